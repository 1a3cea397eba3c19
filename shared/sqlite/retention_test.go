package sqlite

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

var retentionT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// retentionTrail appends records from..to (one a minute from retentionT0,
// over three sessions) and signs a digest of them.
func retentionTrail(t *testing.T, l *AuditLog, g *audit.Digester, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		r := record(fmt.Sprint(i))
		r.Time = retentionT0.Add(time.Duration(i) * time.Minute)
		r.Session = fmt.Sprintf("s%d", i%3)
		if _, err := l.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func verifyStored(t *testing.T, l *AuditLog, pub ed25519.PublicKey) audit.Report {
	t.Helper()
	digests, err := l.Digests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyStored(t.Context(), l, pub, digests)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	l := db.Audit()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	g := &audit.Digester{Trail: l, Store: l, Key: key}
	for _, r := range [][2]int{{1, 100}, {101, 200}, {201, 300}} { // digests end at 100, 200, 300
		retentionTrail(t, l, g, r[0], r[1])
	}
	store := audit.DirStore{Root: t.TempDir()}
	arch := &audit.Archiver{Trail: l, Store: store, Key: key, BatchRecords: 50}
	now := retentionT0.Add(4 * time.Hour) // records 1..119 are older than 2h
	ret := &audit.Retention{Period: 2 * time.Hour, Trail: l, Now: func() time.Time { return now }}

	// Nothing archived: nothing deleted.
	if p, err := ret.Once(ctx, audit.Digest{}); err != nil || p.Records != 0 {
		t.Fatalf("before archiving: %+v, %v", p, err)
	}
	if n, err := arch.Once(ctx); err != nil || n != 6 {
		t.Fatalf("archive: %d, %v", n, err)
	}
	// Archived up to 50 only: no digest ends by then.
	if p, err := ret.Once(ctx, audit.Digest{ToSeq: 50}); err != nil || p.Records != 0 {
		t.Fatalf("archived to 50: %+v, %v", p, err)
	}
	// Archived to 300: deleted up to the last digest before the first
	// record younger than 2 h (record 120), which is record 100.
	if p, err := ret.Once(ctx, audit.Digest{ToSeq: 300}); err != nil || p.Records != 100 {
		t.Fatalf("archived to 300: %+v, %v; want 100 deleted", p, err)
	}
	if p, err := ret.Once(ctx, audit.Digest{ToSeq: 300}); err != nil || p.Records != 0 {
		t.Fatalf("again: %+v, %v", p, err)
	}
	if got := after(t, l, 0, 1); len(got) != 1 || got[0].Seq != 101 {
		t.Fatalf("first record after pruning: %+v", got)
	}
	a, err := l.Pruned(ctx)
	if err != nil || a.Seq != 100 || len(a.Sessions) != 3 {
		t.Fatalf("anchor: %+v, %v", a, err)
	}
	if rep := verifyStored(t, l, pub); !rep.OK || rep.Records != 200 {
		t.Fatalf("verify after pruning: %+v", rep)
	}

	// A zero period keeps everything.
	keep := &audit.Retention{Trail: l, Now: func() time.Time { return now.Add(1000 * time.Hour) }}
	if p, err := keep.Once(ctx, audit.Digest{ToSeq: 300}); err != nil || p.Records != 0 {
		t.Fatalf("zero period: %+v, %v", p, err)
	}

	// Much later everything archived and signed may go, in chunks; a
	// session whose records are all gone goes on from its kept head, in
	// the trail and in the archive.
	now = now.Add(30 * 24 * time.Hour)
	if p, err := ret.Once(ctx, audit.Digest{ToSeq: 300}); err != nil || p.Records != 200 {
		t.Fatalf("a month later: %+v, %v", p, err)
	}
	retentionTrail(t, l, g, 301, 330)
	if rep := verifyStored(t, l, pub); !rep.OK || rep.Records != 30 {
		t.Fatalf("verify after pruning everything: %+v", rep)
	}
	if n, err := arch.Once(ctx); err != nil || n != 1 {
		t.Fatalf("archive: %d, %v", n, err)
	}
	if rep, err := audit.VerifyArchive(ctx, store, pub, nil); err != nil || !rep.OK || rep.Records != 330 {
		t.Fatalf("verify the archive: %+v, %v", rep, err)
	}

	// The kept heads are checked: a changed one is a break.
	if _, err := db.w.ExecContext(ctx, `UPDATE audit_session_heads SET hash = 'x' WHERE session = 's1'`); err != nil {
		t.Fatal(err)
	}
	if rep := verifyStored(t, l, pub); rep.OK || rep.Break == nil || !strings.Contains(rep.Break.Problem, "session s1") {
		t.Fatalf("verify with a changed session head: %+v", rep)
	}
}

// TestRetentionKeepsYoungRecords: records are not in time order (a clock
// stepped back); nothing at or after the cutoff is deleted, even if older
// records follow it.
func TestRetentionKeepsYoungRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openTest(t).Audit()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	g := &audit.Digester{Trail: l, Store: l, Key: key}
	minutes := []int{1, 2, 3, 200, 4, 5} // record 4 is young, 5 and 6 old
	for i, m := range minutes {
		r := record(fmt.Sprint(i))
		r.Time = retentionT0.Add(time.Duration(m) * time.Minute)
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Once(ctx); err != nil { // a digest per record
			t.Fatal(err)
		}
	}
	ret := &audit.Retention{Period: time.Hour, Trail: l, Now: func() time.Time { return retentionT0.Add(190 * time.Minute) }}
	if p, err := ret.Once(ctx, audit.Digest{ToSeq: 6}); err != nil || p.Records != 3 {
		t.Fatalf("%+v, %v; want 3 deleted", p, err)
	}
	if got := after(t, l, 0, 10); len(got) != 3 || got[0].Seq != 4 {
		t.Fatalf("kept: %d records from %d", len(got), got[0].Seq)
	}
}
