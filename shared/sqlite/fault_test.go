package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden/shared/audit"
)

// verifyChain reads the whole trail of l and checks its hash chains,
// returning the records.
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

// TestStoreFaultRecovers makes the store refuse every audit insert, as a
// full disk or a failing device would, and checks that the trail refuses
// records rather than lose or half-keep them, keeps serving reads, and goes
// on where it stopped, chained, once the fault is gone. A full disk cannot
// be had here on demand (the tests run as root, on a file system that is
// not full), so the faults are real SQLite errors raised on purpose: a
// trigger, and a page limit that makes SQLite itself report the disk full.
func TestStoreFaultRecovers(t *testing.T) {
	t.Parallel()
	// big is a record too large for the free space of any page, so that
	// inserting it must grow the file.
	big := func(id string) audit.Record {
		r := record(id)
		r.Args = json.RawMessage(fmt.Sprintf(`{"blob":%q}`, strings.Repeat("x", 16<<10)))
		return r
	}
	for _, tc := range []struct {
		name string
		// inject and heal run on the writer connection.
		inject, heal func(ctx context.Context, db *DB) error
		// cause is how the failed insert is reported, after "insert seq N: ".
		cause string
		rec   func(id string) audit.Record
	}{{
		name: "trigger",
		inject: func(ctx context.Context, db *DB) error {
			_, err := db.w.ExecContext(ctx, `CREATE TRIGGER fail_audit BEFORE INSERT ON audit
				BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`)
			return err
		},
		heal: func(ctx context.Context, db *DB) error {
			_, err := db.w.ExecContext(ctx, `DROP TRIGGER fail_audit`)
			return err
		},
		cause: "constraint failed: database or disk is full (1811)",
		rec:   record,
	}, {
		// SQLITE_FULL from SQLite's own page allocator: the database may
		// not grow past the pages it has.
		name: "page limit",
		inject: func(ctx context.Context, db *DB) error {
			var pages int64
			if err := db.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
				return err
			}
			var got int64
			err := db.w.QueryRowContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)).Scan(&got)
			println("DEBUG pages", pages, "max", got)
			return err
		},
		heal: func(ctx context.Context, db *DB) error {
			_, err := db.w.ExecContext(ctx, `PRAGMA max_page_count = 4294967294`)
			return err
		},
		cause: "database or disk is full (13)",
		rec:   big,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "warden.db")
			db := openAt(t, path)
			l := db.Audit()
			var before []audit.Record
			for i, session := range []string{"s1", "s2", "s1"} {
				r := tc.rec(fmt.Sprint("before-", i))
				r.Session = session
				out, err := l.Append(ctx, r)
				must(t, err)
				before = append(before, out)
			}
			committed := l.records.Load()
			must(t, tc.inject(ctx, db))

			// Several callers at once, so that some share a failed batch,
			// then one alone: the fault holds, and each is told so.
			const n = 8
			var wg sync.WaitGroup
			for i := range n + 1 {
				id := fmt.Sprint("refused-", i)
				call := func() {
					r := tc.rec(id)
					r.Session = "s1"
					got, err := l.Append(ctx, r)
					want := fmt.Sprintf("append audit record %s: insert seq %d: %s", id, len(before)+1, tc.cause)
					if err == nil || err.Error() != want {
						t.Errorf("Append during the fault: %v, want %q", err, want)
					}
					if got.Seq != 0 || got.Hash != "" {
						t.Errorf("Append during the fault returned a stored record: Seq %d, hash %.12s", got.Seq, got.Hash)
					}
				}
				if i < n {
					wg.Go(call)
				} else {
					wg.Wait()
					call()
				}
			}
			if got := l.records.Load(); got != committed {
				t.Errorf("%d records committed during the fault", got-committed)
			}
			// Reads go on meanwhile, and show nothing of the refused records.
			latest, err := l.Latest(ctx)
			must(t, err)
			if latest != int64(len(before)) {
				t.Errorf("Latest during the fault = %d, want %d", latest, len(before))
			}
			equal(t, "After during the fault", after(t, l, 0, 100), before)

			must(t, tc.heal(ctx, db))
			next := tc.rec("after")
			next.Session = "s1"
			got, err := l.Append(ctx, next)
			must(t, err)
			if got.Seq != int64(len(before))+1 || got.Prev != before[2].Hash || got.SessionPrev != before[2].Hash {
				t.Errorf("first record after the fault: Seq %d, Prev %.12s, SessionPrev %.12s; want Seq %d linked to %.12s",
					got.Seq, got.Prev, got.SessionPrev, len(before)+1, before[2].Hash)
			}
			want := append(before, got)
			equal(t, "After once healed", verifyChain(t, l), want)

			// Nothing refused turns up after a restart either.
			must(t, db.Close())
			equal(t, "After a reopen", verifyChain(t, openAt(t, path).Audit()), want)
		})
	}
}
