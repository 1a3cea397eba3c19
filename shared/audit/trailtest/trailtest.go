// Package trailtest holds the checks every audit trail must pass — the
// local SQLite trail and the DynamoDB one alike: records appended are
// read back whole, in one gapless Seq order, chained (the log and each
// session), found by the queries the server makes, verified as stored and
// against signed digests, and archived.
//
// A trail may give records their place after Append returns (DynamoDB's
// archiver sequences them from the table's stream): Trail.Settle makes
// every appended record readable, and does nothing for a trail that
// orders on Append.
package trailtest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

// Store is what a trail implements.
type Store interface {
	audit.Sink
	audit.Reader
	audit.Querier
	audit.StoredReader
	audit.DigestStore
}

// Trail is a trail under test.
type Trail struct {
	Store
	// Settle makes every record appended so far readable; nil for a trail
	// whose records are readable when Append returns.
	Settle func(t *testing.T)
}

func (tr Trail) settle(t *testing.T) {
	if tr.Settle != nil {
		tr.Settle(t)
	}
}

// Run runs the checks, each as a parallel subtest on a fresh, empty trail
// from newTrail.
func Run(t *testing.T, newTrail func(t *testing.T) Trail) {
	t.Helper()
	for _, c := range []struct {
		name string
		run  func(t *testing.T, tr Trail)
	}{
		{"ReadBackInOrder", testReadBack},
		{"Queries", testQueries},
		{"StoredAndDigests", testStoredAndDigests},
		{"Archive", testArchive},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newTrail(t))
		})
	}
}

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// appendN appends n records: three sessions taking turns, every fifth a
// deny, each with arguments; it returns them as appended.
func appendN(t *testing.T, tr Trail, n int) []audit.Record {
	t.Helper()
	var out []audit.Record
	for i := range n {
		r := audit.Record{ID: audit.NewID(), Time: t0.Add(time.Duration(i) * time.Second), Code: audit.DecisionAllow,
			Project: "web", Agent: "claude", Session: fmt.Sprint("s", i%3), Kind: "tool", Action: "tool:Bash",
			Resource: fmt.Sprint("go test ./pkg", i), Effect: "allow", Rule: "shell", Args: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
		if i%5 == 4 {
			r.Code, r.Effect, r.Rule = audit.DecisionDeny, "deny", "no-main-push"
		}
		got, err := tr.Append(context.Background(), r)
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, got)
	}
	return out
}

// readAll reads the whole trail with After in pages of size.
func readAll(t *testing.T, tr Trail, size int) []audit.Record {
	t.Helper()
	var out []audit.Record
	for after := int64(0); ; {
		page, err := tr.After(context.Background(), after, size)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		if page[0].Seq <= after {
			t.Fatalf("After(%d) returned seq %d: the paging would never end", after, page[0].Seq)
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

func testReadBack(t *testing.T, tr Trail) {
	ctx := context.Background()
	if latest, err := tr.Latest(ctx); err != nil || latest != 0 {
		t.Fatalf("Latest of an empty trail = %d, %v", latest, err)
	}
	want := appendN(t, tr, 23)
	tr.settle(t)
	got := readAll(t, tr, 4)
	if len(got) != len(want) {
		t.Fatalf("read %d records, appended %d", len(got), len(want))
	}
	byID := map[string]audit.Record{}
	for _, r := range want {
		byID[r.ID] = r
	}
	var v audit.Verifier
	for i, r := range got {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has Seq %d: the order is not gapless from 1", i, r.Seq)
		}
		if b := v.Check(r); b != nil {
			t.Fatalf("the chain breaks: %v", b)
		}
		w, ok := byID[r.ID]
		if !ok {
			t.Fatalf("record %s read back was never appended", r.ID)
		}
		delete(byID, r.ID)
		if !r.Time.Equal(w.Time) || r.Code != w.Code || r.Session != w.Session || r.Resource != w.Resource ||
			r.Rule != w.Rule || string(r.Args) != string(w.Args) {
			t.Errorf("record %s read back as %+v, appended as %+v", r.ID, r, w)
		}
	}
	if latest, err := tr.Latest(ctx); err != nil || latest != int64(len(want)) {
		t.Errorf("Latest = %d, %v; want %d", latest, err, len(want))
	}
	if page, err := tr.After(ctx, int64(len(want)), 10); err != nil || len(page) != 0 {
		t.Errorf("After the newest: %d records, %v", len(page), err)
	}
}

func testQueries(t *testing.T, tr Trail) {
	ctx := context.Background()
	appendN(t, tr, 30)
	tr.settle(t)
	for _, tc := range []struct {
		name string
		f    audit.Filter
		want func(r audit.Record) bool
	}{
		{"session", audit.Filter{Session: "s1"}, func(r audit.Record) bool { return r.Session == "s1" }},
		{"code", audit.Filter{Code: audit.DecisionDeny}, func(r audit.Record) bool { return r.Code == audit.DecisionDeny }},
		{"session and refusals", audit.Filter{Session: "s2", Effect: "denied"}, func(r audit.Record) bool {
			return r.Session == "s2" && r.Code == audit.DecisionDeny
		}},
		{"time", audit.Filter{Since: t0.Add(10 * time.Second), Until: t0.Add(20 * time.Second)}, func(r audit.Record) bool {
			return !r.Time.Before(t0.Add(10*time.Second)) && r.Time.Before(t0.Add(20*time.Second))
		}},
	} {
		var want []int64
		for _, r := range readAll(t, tr, 100) {
			if tc.want(r) {
				want = append(want, r.Seq)
			}
		}
		// In pages of 2, as the admin API pages.
		var got []int64
		for after := int64(0); ; {
			page, err := tr.Query(ctx, tc.f, after, 2)
			if err != nil {
				t.Fatalf("Query %s: %v", tc.name, err)
			}
			if len(page) == 0 {
				break
			}
			if page[0].Seq <= after {
				t.Fatalf("Query %s after %d returned seq %d: the paging would never end", tc.name, after, page[0].Seq)
			}
			for _, r := range page {
				got = append(got, r.Seq)
			}
			after = page[len(page)-1].Seq
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
			t.Errorf("Query %s: seqs %v, want %v", tc.name, got, want)
		}
	}
}

func testStoredAndDigests(t *testing.T, tr Trail) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	g := &audit.Digester{Trail: tr, Store: tr, Key: key}
	if _, err := tr.LastDigest(ctx); !errors.Is(err, audit.ErrNoDigest) {
		t.Fatalf("LastDigest of a new trail: %v", err)
	}
	appendN(t, tr, 12)
	tr.settle(t)
	if _, err := g.Once(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, tr, 7)
	tr.settle(t)
	if _, err := g.Once(ctx); err != nil {
		t.Fatal(err)
	}
	ds, err := tr.Digests(ctx)
	if err != nil || len(ds) != 2 || ds[0].ToSeq != 12 || ds[1].ToSeq != 19 {
		t.Fatalf("Digests = %+v, %v", ds, err)
	}
	if last, err := tr.LastDigest(ctx); err != nil || last.Seq != ds[1].Seq {
		t.Errorf("LastDigest = %+v, %v", last, err)
	}
	if err := tr.AppendDigest(ctx, ds[0]); err == nil {
		t.Error("AppendDigest took a digest that does not follow the newest")
	}
	rep, err := audit.VerifyStored(ctx, tr, pub, ds)
	if err != nil || !rep.OK || rep.Records != 19 || rep.Digests != 2 {
		t.Errorf("VerifyStored = %+v, %v", rep, err)
	}
	var seen int64
	if err := tr.EachStored(ctx, 12, func(s audit.StoredRecord) error {
		seen++
		if s.Seq != 12+seen {
			return fmt.Errorf("stored record %d after %d", s.Seq, 12+seen-1)
		}
		return nil
	}); err != nil || seen != 7 {
		t.Errorf("EachStored after 12: %d records, %v", seen, err)
	}
}

func testArchive(t *testing.T, tr Trail) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	appendN(t, tr, 25)
	tr.settle(t)
	arch := &audit.Archiver{Trail: tr, Store: audit.DirStore{Root: t.TempDir()}, Key: key, BatchRecords: 10}
	if n, err := arch.Once(ctx); err != nil || n != 3 {
		t.Fatalf("archive: %d batches, %v; want 3 of at most 10 records", n, err)
	}
	rep, err := audit.VerifyArchive(ctx, arch.Store, key.Public().(ed25519.PublicKey), nil)
	if err != nil || !rep.OK || rep.Records != 25 {
		t.Errorf("VerifyArchive = %+v, %v", rep, err)
	}
}
