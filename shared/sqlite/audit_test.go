package sqlite

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/audit/trailtest"
)

// record returns a record with every field set.
func record(id string) audit.Record {
	return audit.Record{
		ID:            id,
		Time:          time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
		Code:          audit.DecisionAllow,
		Project:       "web",
		Agent:         "claude",
		Session:       "d97e2169",
		ClientSession: "cs-1",
		Actor:         "alice",
		Kind:          "tool",
		Action:        "tool:Bash",
		Resource:      "git status",
		Args:          json.RawMessage(`{"command":"git status","n":[1,2.5,null]}`),
		Ref:           "toolu_" + id,
		Effect:        "allow",
		Rule:          "allow-git",
		Reason:        "read-only git",
		PolicyVersion: "v7",
		Status:        "ok",
		DurationMS:    12,
	}
}

func after(t *testing.T, l *AuditLog, seq int64, limit int) []audit.Record {
	t.Helper()
	got, err := l.After(t.Context(), seq, limit)
	if err != nil {
		t.Fatalf("After(%d, %d): %v", seq, limit, err)
	}
	return got
}

func TestAppendConcurrent(t *testing.T) {
	t.Parallel()
	const goroutines, each = 50, 40
	l := openTest(t).Audit()
	acked := make([][]audit.Record, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				in := record(fmt.Sprintf("g%d-%d", g, i))
				in.DurationMS = int64(g*each + i)
				out, err := l.Append(t.Context(), in)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				if out.Hash == "" || out.Prev == "" && out.Seq != 1 {
					t.Errorf("record %d is not chained: %+v", out.Seq, out)
				}
				in.Seq, in.Prev, in.SessionPrev, in.Hash = out.Seq, out.Prev, out.SessionPrev, out.Hash
				equal(t, "Append", out, in)
				acked[g] = append(acked[g], out)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	all := slices.Concat(acked...)
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	for i, r := range all {
		if r.Seq != int64(i+1) {
			t.Fatalf("acknowledged seqs are not 1..%d, each once: position %d has %d", len(all), i, r.Seq)
		}
	}
	// Each caller's records are in the trail in the order it appended them.
	for g := range acked {
		if !slices.IsSortedFunc(acked[g], func(a, b audit.Record) int { return int(a.Seq - b.Seq) }) {
			t.Errorf("goroutine %d: seqs out of order", g)
		}
	}
	equal(t, "After(0, all)", after(t, l, 0, 5000), all)
	// The concurrent batches form one unbroken chain, and one per session.
	var v audit.Verifier
	for _, r := range all {
		if b := v.Check(r); b != nil {
			t.Fatalf("chain: %v", b)
		}
	}
	equal(t, "After(1000, 10)", after(t, l, 1000, 10), all[1000:1010])
	equal(t, "After(2000, 10)", after(t, l, 2000, 10), []audit.Record(nil))
	equal(t, "After(0, 0)", after(t, l, 0, 0), []audit.Record(nil))
	t.Logf("%d records in %d commits", l.records.Load(), l.batches.Load())
}

func TestAuditStoredColumns(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	r, err := db.Audit().Append(t.Context(), record("r1"))
	must(t, err)
	var seq int64
	var at, code, project, agent, session, ref, data, hash string
	must(t, db.r.QueryRowContext(t.Context(), `SELECT seq, time, code, project, agent, session, ref, record, hash FROM audit`).
		Scan(&seq, &at, &code, &project, &agent, &session, &ref, &data, &hash))
	got := []any{seq, at, code, project, agent, session, ref, hash}
	want := []any{int64(1), "2025-03-14T15:09:26.535897932Z", "decision.allow", "web", "claude", "d97e2169", "toolu_r1", r.Hash}
	equal(t, "columns", got, want)
	// The record is kept as its canonical encoding, which its hash covers.
	canonical, err := audit.Canonical(r)
	must(t, err)
	if data != string(canonical) || audit.HashCanonical([]byte(data)) != hash {
		t.Errorf("record column = %s, want %s", data, canonical)
	}
}

func TestAuditSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(ctx, path)
	must(t, err)
	var want []audit.Record
	for _, id := range []string{"a", "b", "c"} {
		r, err := db.Audit().Append(ctx, record(id))
		must(t, err)
		want = append(want, r)
	}
	must(t, db.Close())

	l := openAt(t, path).Audit()
	equal(t, "After reopen", after(t, l, 0, 10), want)
	r, err := l.Append(ctx, record("d"))
	must(t, err)
	if r.Seq != 4 {
		t.Errorf("first Seq after reopen = %d, want 4", r.Seq)
	}
}

func TestAppendAfterClose(t *testing.T) {
	t.Parallel()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "warden.db"))
	must(t, err)
	must(t, db.Close())
	must(t, db.Close()) // a second Close does nothing
	_, err = db.Audit().Append(t.Context(), record("r1"))
	if want := "append audit record r1: audit sink closed"; !errors.Is(err, audit.ErrClosed) || err.Error() != want {
		t.Errorf("Append after Close: %v, want %q", err, want)
	}
}

// stallWriter takes the writer connection, runs blocker (which appends a
// record) and returns once the audit writer has taken that record into a
// batch and waits for the connection. Records appended from then on queue
// up until the returned connection is closed, and then form one batch.
func stallWriter(t *testing.T, db *DB, blocker func()) *sql.Conn {
	t.Helper()
	c := holdWriter(t, db)
	waits := db.w.Stats().WaitCount
	go blocker()
	waitFor(t, "the writer to wait for its connection", func() bool { return db.w.Stats().WaitCount > waits })
	return c
}

func TestCloseFlushesQueued(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(ctx, path)
	must(t, err)
	l := db.Audit()
	const n = 20
	errs := make(chan error, n+1)
	appendOne := func(id string) {
		_, err := l.Append(ctx, record(id))
		errs <- err
	}
	writer := stallWriter(t, db, func() { appendOne("blocker") })
	for i := range n {
		go appendOne(fmt.Sprint(i))
	}
	waitFor(t, "the records to queue", func() bool { return len(l.queue) == n })
	closed := make(chan error)
	go func() { closed <- db.Close() }()
	waitFor(t, "Close to stop Append", func() bool {
		l.mu.RLock()
		defer l.mu.RUnlock()
		return l.closed
	})
	_, err = l.Append(ctx, record("late"))
	if !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Append while closing: %v, want audit.ErrClosed", err)
	}
	writer.Close()
	must(t, <-closed)
	for range n + 1 {
		if err := <-errs; err != nil {
			t.Errorf("queued Append: %v", err)
		}
	}
	if got := len(after(t, openAt(t, path).Audit(), 0, 100)); got != n+1 {
		t.Errorf("%d records after reopen, want %d", got, n+1)
	}
}

// TestAppendFailedBatch fails a batch part-way, after some of its records
// were inserted, with a real SQLite error: a trigger on the writer
// connection aborts the insert of one record. Every caller of that batch
// must get the error, and none of its records may be stored.
func TestAppendFailedBatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	l := db.Audit()
	const n = 20
	type result struct {
		id  string
		r   audit.Record
		err error
	}
	results := make(chan result, n+1)
	appendOne := func(id string) {
		r, err := l.Append(ctx, record(id))
		results <- result{id, r, err}
	}
	c := stallWriter(t, db, func() { appendOne("blocker") })
	_, err := c.ExecContext(ctx, `CREATE TEMP TRIGGER poison BEFORE INSERT ON audit WHEN NEW.ref = 'toolu_poison'
		BEGIN SELECT RAISE(ABORT, 'poisoned record'); END`)
	must(t, err)
	for i := range n - 1 {
		go appendOne(fmt.Sprint(i))
	}
	waitFor(t, "the records to queue", func() bool { return len(l.queue) == n-1 })
	go appendOne("poison") // last in its batch: the others are inserted first
	waitFor(t, "the poison to queue", func() bool { return len(l.queue) == n })
	c.Close()

	var blocker audit.Record
	for range n + 1 {
		res := <-results
		if res.id == "blocker" {
			if res.err != nil || res.r.Seq != 1 {
				t.Fatalf("blocker: Seq %d, error %v; want Seq 1", res.r.Seq, res.err)
			}
			blocker = res.r
			continue
		}
		// The poison is the batch's 20th record, after the blocker's batch.
		want := fmt.Sprintf("append audit record %s: insert seq %d: constraint failed: poisoned record (1811)", res.id, n+1)
		if res.err == nil || res.err.Error() != want {
			t.Errorf("Append in the failed batch: Seq %d, error %v; want %q", res.r.Seq, res.err, want)
		}
	}
	equal(t, "After", after(t, l, 0, 100), []audit.Record{blocker})

	// The trail goes on without a gap once the cause is gone.
	_, err = db.w.ExecContext(ctx, `DROP TRIGGER IF EXISTS temp.poison`)
	must(t, err)
	r, err := l.Append(ctx, record("next"))
	must(t, err)
	if r.Seq != 2 {
		t.Errorf("Seq after the failed batch = %d, want 2", r.Seq)
	}
}

func TestAppendContextEnds(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	l := db.Audit()

	done, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := l.Append(done, record("done"))
	if want := "append audit record done: context canceled"; !errors.Is(err, context.Canceled) || err.Error() != want {
		t.Errorf("Append with an ended context: %v, want %q", err, want)
	}

	// A record the writer has taken is committed, and its caller told so,
	// even if its context ends meanwhile.
	takenCtx, cancelTaken := context.WithCancel(t.Context())
	taken := make(chan error)
	writer := stallWriter(t, db, func() {
		_, err := l.Append(takenCtx, record("taken"))
		taken <- err
	})
	cancelTaken()
	// A record still queued when its context ends is not written.
	queuedCtx, cancelQueued := context.WithCancel(t.Context())
	queued := make(chan error)
	go func() {
		_, err := l.Append(queuedCtx, record("queued"))
		queued <- err
	}()
	waitFor(t, "the record to queue", func() bool { return len(l.queue) == 1 })
	cancelQueued()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Errorf("Append cancelled while queued: %v, want context.Canceled", err)
	}
	writer.Close()
	if err := <-taken; err != nil {
		t.Errorf("Append cancelled after the writer took it: %v, want success", err)
	}
	got := after(t, l, 0, 10)
	if len(got) != 1 || got[0].ID != "taken" {
		t.Errorf("After = %+v, want only the taken record", got)
	}
}

func TestAppendUnencodableRecord(t *testing.T) {
	t.Parallel()
	l := openTest(t).Audit()
	bad := record("bad")
	bad.Args = json.RawMessage(`{"unterminated"`)
	_, err := l.Append(t.Context(), bad)
	want := "append audit record bad: canonical args of record bad: unexpected end of JSON input"
	if err == nil || err.Error() != want {
		t.Errorf("Append: %v, want %q", err, want)
	}
	r, err := l.Append(t.Context(), record("good"))
	must(t, err)
	if r.Seq != 1 {
		t.Errorf("Seq after a refused record = %d, want 1", r.Seq)
	}
}

func TestDigestsStored(t *testing.T) {
	t.Parallel()
	l := openTest(t).Audit()
	seed := make([]byte, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(seed)
	g := &audit.Digester{Trail: l, Store: l, Key: key}
	for i := range 3 {
		for j := range 5 {
			_, err := l.Append(t.Context(), record(fmt.Sprintf("r%d-%d", i, j)))
			must(t, err)
		}
		if _, err := g.Once(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	digests, err := l.Digests(t.Context())
	must(t, err)
	if len(digests) != 3 || digests[2].ToSeq != 15 {
		t.Fatalf("digests %+v", digests)
	}
	if err := l.AppendDigest(t.Context(), digests[1]); err == nil {
		t.Error("a digest out of order was stored")
	}
	recs := after(t, l, 0, 100)
	if err := audit.CheckDigests(key.Public().(ed25519.PublicKey), digests, recs); err != nil {
		t.Errorf("stored digests do not check: %v", err)
	}
}

// TestVerifyStoredCatchesTampering edits the database behind the log's back.
func TestVerifyStoredCatchesTampering(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, sql string
		seq       int64
		problem   string
	}{
		{"edited record", `UPDATE audit SET record = replace(record, 'git status', 'git push') WHERE seq = 7`, 7, "record hash"},
		{"edited hash column", `UPDATE audit SET hash = 'ff' WHERE seq = 7`, 7, "record hash"},
		{"deleted record", `DELETE FROM audit WHERE seq = 7`, 8, "sequence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := openTest(t)
			l := db.Audit()
			for i := range 12 {
				_, err := l.Append(t.Context(), record(fmt.Sprintf("r%d", i)))
				must(t, err)
			}
			rep, err := audit.VerifyStored(t.Context(), l, nil, nil)
			if err != nil || !rep.OK || rep.Records != 12 {
				t.Fatalf("untouched: %+v %v", rep, err)
			}
			_, err = db.w.ExecContext(t.Context(), tc.sql)
			must(t, err)
			rep, err = audit.VerifyStored(t.Context(), l, nil, nil)
			if err != nil || rep.OK || rep.Break == nil || rep.Break.Seq != tc.seq || rep.Break.Problem != tc.problem {
				t.Errorf("after %s: %+v %v", tc.sql, rep.Break, err)
			}
		})
	}
}

// TestSessionLookupsUseTheIndex holds the two per-session queries to the
// session index: without it they scan the whole trail.
func TestSessionLookupsUseTheIndex(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	for _, q := range []string{
		`SELECT hash FROM audit WHERE session = 's' AND session <> '' ORDER BY seq DESC LIMIT 1`,
		`SELECT seq, record, hash FROM audit WHERE seq > 0 AND session = 's' AND session <> '' ORDER BY seq LIMIT 10`,
	} {
		rows, err := db.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q)
		must(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			must(t, rows.Scan(&id, &parent, &notused, &detail))
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "; "), "USING INDEX audit_by_session") {
			t.Errorf("%s\nplan: %v", q, plan)
		}
	}
}

// TestAppendDeferred checks that a deferred record waits for one someone
// waits for and is committed with it, or alone after deferredWait, and that
// its callback is told the stored record.
func TestAppendDeferred(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	l := db.Audit()
	ctx := t.Context()
	got := make(chan audit.Record, 2)
	then := func(r audit.Record, err error) {
		if err != nil {
			t.Error(err)
		}
		got <- r
	}
	before := l.batches.Load()
	l.AppendDeferred(record("later"), then)
	if _, err := l.Append(ctx, record("now")); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.ID != "later" || r.Seq != 1 {
		t.Errorf("deferred record stored as %s seq %d, want later seq 1", r.ID, r.Seq)
	}
	if n := l.batches.Load() - before; n != 1 {
		t.Errorf("%d commits for a deferred record and the one after it, want 1", n)
	}
	// Alone, it is committed after deferredWait.
	start := time.Now()
	l.AppendDeferred(record("alone"), then)
	if r := <-got; r.Seq != 3 || time.Since(start) < deferredWait {
		t.Errorf("lone deferred record: seq %d after %v", r.Seq, time.Since(start))
	}
	// After Close it is refused, and the callback says so.
	must(t, db.Close())
	errc := make(chan error, 1)
	l.AppendDeferred(record("closed"), func(_ audit.Record, err error) { errc <- err })
	if err := <-errc; !errors.Is(err, audit.ErrClosed) {
		t.Errorf("deferred record after Close: %v, want ErrClosed", err)
	}
}

// TestTrailConformance runs the checks every audit trail passes.
func TestTrailConformance(t *testing.T) {
	t.Parallel()
	trailtest.Run(t, func(t *testing.T) trailtest.Trail { return trailtest.Trail{Store: openTest(t).Audit()} })
}
