package sqlite

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden/shared/audit"
)

// A full disk or a failing device cannot be had here on demand (the tests
// run as root, on a file system that is not full), so the faults below are
// real SQLite errors raised on purpose: a trigger that fails every insert
// into the trail for as long as it exists, and a page limit on the writer
// connection that makes SQLite's own allocator report the disk full.

// verifyChain reads the whole trail of l, checks its hash chains and
// returns the records.
func verifyChain(t *testing.T, l *AuditLog) []audit.Record {
	t.Helper()
	recs := after(t, l, 0, 1000)
	var v audit.Verifier
	for _, r := range recs {
		if b := v.Check(r); b != nil {
			t.Fatalf("the trail does not verify: %v", b)
		}
	}
	return recs
}

// appendSessions appends one record for each of sessions and returns them.
func appendSessions(t *testing.T, l *AuditLog, rec func(id string) audit.Record, prefix string, sessions ...string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for i, s := range sessions {
		r := rec(fmt.Sprint(prefix, i))
		r.Session = s
		stored, err := l.Append(t.Context(), r)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		out = append(out, stored)
	}
	return out
}

// TestStoreFaultRecovers makes the store refuse every insert into the
// trail for a while, as a full disk would. Every caller is told, with the
// cause; no record is acknowledged or kept; reads go on; and once the
// fault is gone the trail continues at the next Seq, chained to the last
// record before the fault, also after a restart.
func TestStoreFaultRecovers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "warden.db")
	db := openAt(t, path)
	l := db.Audit()
	before := appendSessions(t, l, record, "before-", "s1", "s2", "s1")
	committed := l.records.Load()

	// RAISE(FAIL) fails the statement and leaves the transaction open, so
	// the writer's ROLLBACK succeeds and its connection is kept: the fault
	// lasts until the trigger is dropped.
	_, err := db.w.ExecContext(ctx, `CREATE TRIGGER fail_audit BEFORE INSERT ON audit
		BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`)
	must(t, err)
	refuse := func(id string) {
		r := record(id)
		r.Session = "s1"
		got, err := l.Append(ctx, r)
		// Each failed batch starts at the Seq after the last record kept.
		want := fmt.Sprintf("append audit record %s: insert seq %d: constraint failed: database or disk is full (1811)", id, len(before)+1)
		if err == nil || err.Error() != want {
			t.Errorf("Append during the fault: %v, want %q", err, want)
		}
		if got.Seq != 0 || got.Hash != "" {
			t.Errorf("Append during the fault returned a stored record: Seq %d, hash %.12s", got.Seq, got.Hash)
		}
	}
	// Several callers at once, so that some share a failed batch; then one
	// alone, to show that the writer lives on and the fault holds.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { refuse(fmt.Sprint("refused-", i)) })
	}
	wg.Wait()
	refuse("refused-alone")
	if got := l.records.Load(); got != committed {
		t.Errorf("%d records committed during the fault", got-committed)
	}
	latest, err := l.Latest(ctx)
	must(t, err)
	if latest != int64(len(before)) {
		t.Errorf("Latest during the fault = %d, want %d", latest, len(before))
	}
	equal(t, "After during the fault", after(t, l, 0, 100), before)

	_, err = db.w.ExecContext(ctx, `DROP TRIGGER fail_audit`)
	must(t, err)
	next := appendSessions(t, l, record, "after-", "s1")[0]
	if next.Seq != int64(len(before))+1 || next.Prev != before[2].Hash || next.SessionPrev != before[2].Hash {
		t.Errorf("first record after the fault: Seq %d, Prev %.12s, SessionPrev %.12s; want Seq %d linked to %.12s",
			next.Seq, next.Prev, next.SessionPrev, len(before)+1, before[2].Hash)
	}
	want := append(slices.Clone(before), next)
	equal(t, "the trail once the fault is gone", verifyChain(t, l), want)

	// No refused record turns up after a restart either.
	must(t, db.Close())
	equal(t, "the trail after a restart", verifyChain(t, openAt(t, path).Audit()), want)
}

// TestStoreFaultDiskFull fails a commit with SQLite's own SQLITE_FULL. That
// error rolls the whole transaction back inside SQLite, so the writer's
// ROLLBACK fails and its connection is discarded; the page limit, a setting
// of that connection, goes with it. The caller is told the disk is full,
// and the next record is written on a fresh writer connection that has
// the same durability settings, at the next Seq.
func TestStoreFaultDiskFull(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	l := db.Audit()
	// Records too large for the free space of any page: each one must
	// grow the file.
	big := func(id string) audit.Record {
		r := record(id)
		r.Args = json.RawMessage(fmt.Sprintf(`{"blob":%q}`, strings.Repeat("x", 16<<10)))
		return r
	}
	before := appendSessions(t, l, big, "before-", "s1", "s2")

	var pages int64
	must(t, db.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages))
	_, err := db.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages))
	must(t, err)
	_, err = l.Append(ctx, big("full"))
	if want := "append audit record full: insert seq 3: database or disk is full (13)"; err == nil || err.Error() != want {
		t.Fatalf("Append with the disk full: %v, want %q", err, want)
	}
	equal(t, "the trail after the failed commit", after(t, l, 0, 100), before)

	// The writer connection is a fresh one, set up as Open sets it up.
	for _, p := range []struct{ pragma, want string }{
		{"max_page_count", "4294967294"}, // the limit went with the old connection
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"wal_autocheckpoint", "0"},
		{"busy_timeout", "5000"},
	} {
		var got string
		must(t, db.w.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got))
		if got != p.want {
			t.Errorf("writer PRAGMA %s = %s after the failed commit, want %s", p.pragma, got, p.want)
		}
	}
	next := appendSessions(t, l, big, "after-", "s1")[0]
	if next.Seq != 3 || next.Prev != before[1].Hash || next.SessionPrev != before[0].Hash {
		t.Errorf("first record after the failed commit: Seq %d, Prev %.12s, SessionPrev %.12s; want Seq 3 after %.12s, session after %.12s",
			next.Seq, next.Prev, next.SessionPrev, before[1].Hash, before[0].Hash)
	}
	equal(t, "the trail", verifyChain(t, l), append(slices.Clone(before), next))
}
