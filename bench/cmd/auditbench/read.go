package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

// pageSize is the limit of each Query call, as the server's replay uses.
const pageSize = 1000

// readSession reads a whole session with Query, page after page until an
// empty page, as the server's replay does, and checks that it got exactly
// the session's records, in order.
func readSession(ctx context.Context, q audit.Querier, s *session) ([]audit.Record, error) {
	var recs []audit.Record
	var after int64
	for {
		page, err := q.Query(ctx, audit.Filter{Session: s.id}, after, pageSize)
		if err != nil {
			return nil, fmt.Errorf("query session %s after %d: %w", s.id, after, err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if r.Session != s.id || r.Seq <= after {
				return nil, fmt.Errorf("query session %s: got seq %d of session %q after seq %d", s.id, r.Seq, r.Session, after)
			}
			after = r.Seq
		}
		recs = append(recs, page...)
	}
	if len(recs) != s.written {
		return nil, fmt.Errorf("query session %s: got %d records, %d were appended", s.id, len(recs), s.written)
	}
	return recs, nil
}

// timings is a set of measured durations.
type timings []time.Duration

func (t timings) quantile(q float64) time.Duration {
	if len(t) == 0 {
		return 0
	}
	s := slices.Clone(t)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

// queried is the outcome of timing session queries of one kind.
type queried struct {
	times   timings
	sizes   []int           // records of each query, in the order of times
	cpu     []time.Duration // CPU time the process used during each query
	records int             // records read in all
	planned int             // samples planned; fewer when the time budget ran out
	// What else happened while they ran: garbage collections and their
	// stop-the-world pauses, bytes read from the disk rather than the OS
	// page cache (-1 if unknown), and the CPU time of the machine that
	// went to other processes (steal included: the hypervisor's), against
	// the whole of it, wall time times CPUs (zero if unknown).
	gcs               uint32
	gcPause           time.Duration
	diskBytes         int64
	others, available time.Duration
}

// at returns the index of the query at quantile q of the times.
func (q *queried) at(quantile float64) int {
	order := make([]int, len(q.times))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(q.times[a], q.times[b]) })
	return order[min(int(quantile*float64(len(order))), len(order)-1)]
}

// querySessions times readSession on each session in turn, stopping once
// deadline has passed (after at least one).
func querySessions(ctx context.Context, q audit.Querier, sample []*session, deadline time.Time, label string, progress io.Writer) (*queried, error) {
	res := &queried{planned: len(sample)}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	disk := diskReadBytes()
	busy0, total0, ok0 := machineCPU()
	cpu0, wall0 := processCPU(), time.Now()
	for i, s := range sample {
		if i > 0 && time.Now().After(deadline) {
			fmt.Fprintf(progress, "query %s: time budget spent after %d of %d sessions\n", label, i, len(sample))
			break
		}
		cpu := processCPU()
		start := time.Now()
		recs, err := readSession(ctx, q, s)
		if err != nil {
			return nil, err
		}
		res.times = append(res.times, time.Since(start))
		res.cpu = append(res.cpu, processCPU()-cpu)
		res.sizes = append(res.sizes, len(recs))
		res.records += len(recs)
	}
	ours, wall := processCPU()-cpu0, time.Since(wall0)
	busy1, total1, ok1 := machineCPU()
	if ok0 && ok1 && total1 > total0 {
		// The counters are in clock ticks; all of them together span the
		// wall time on every CPU.
		scale := float64(wall) * float64(runtime.NumCPU()) / float64(total1-total0)
		res.available = wall * time.Duration(runtime.NumCPU())
		res.others = max(time.Duration(float64(busy1-busy0)*scale)-ours, 0)
	}
	runtime.ReadMemStats(&after)
	res.gcs, res.gcPause = after.NumGC-before.NumGC, time.Duration(after.PauseTotalNs-before.PauseTotalNs)
	res.diskBytes = -1
	if end := diskReadBytes(); disk >= 0 && end >= 0 {
		res.diskBytes = end - disk
	}
	fmt.Fprintf(progress, "query %s: %d sessions, p50 %s, p99 %s\n", label, len(res.times), ms(res.times.quantile(0.5)), ms(res.times.quantile(0.99)))
	return res, nil
}

// replayed is the outcome of the replay phase.
type replayed struct {
	times   timings
	records int // records of the replayed session
	events  int // events of its timeline
}

// replaySessions times reading a large session and building its timeline,
// runs times, cycling through the large sessions.
func replaySessions(ctx context.Context, q audit.Querier, large []*session, runs int, deadline time.Time, progress io.Writer) (*replayed, error) {
	res := &replayed{}
	for i := range runs {
		if i > 0 && time.Now().After(deadline) {
			fmt.Fprintf(progress, "replay: time budget spent after %d of %d runs\n", i, runs)
			break
		}
		s := large[i%len(large)]
		start := time.Now()
		recs, err := readSession(ctx, q, s)
		if err != nil {
			return nil, err
		}
		events := audit.Replay(recs)
		res.times = append(res.times, time.Since(start))
		if len(events) == 0 {
			return nil, fmt.Errorf("replay session %s: no events from %d records", s.id, len(recs))
		}
		res.records, res.events = len(recs), len(events)
	}
	fmt.Fprintf(progress, "replay: %d runs, median %s\n", len(res.times), ms(res.times.quantile(0.5)))
	return res, nil
}

// verified is the outcome of verifying the whole trail.
type verified struct {
	report  audit.Report
	elapsed time.Duration
}

func verify(ctx context.Context, src audit.StoredReader, progress io.Writer) (*verified, error) {
	start := time.Now()
	rep, err := audit.VerifyStored(ctx, src, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	v := &verified{report: rep, elapsed: time.Since(start)}
	fmt.Fprintf(progress, "verify: %s records in %s, ok=%v\n", thousands(rep.Records), v.elapsed.Round(time.Millisecond), rep.OK)
	return v, nil
}

// Statements of package sqlite, copied to show their query plans: the two
// of AuditLog.Query by session (the session's seqs from its index, then
// each chunk of its records) and the session head read of each batch's
// commit. All require a non-empty session, which lets SQLite use the
// partial index audit_by_session; tests in shared/sqlite hold them to it.
const (
	seqsSQL  = `SELECT seq FROM audit WHERE seq > ? AND session = ? AND session <> '' ORDER BY seq LIMIT ?`
	chunkSQL = `SELECT seq, record, hash FROM audit WHERE seq > ? AND seq <= ? AND session = ? AND session <> '' ORDER BY seq LIMIT ?`
	headSQL  = `SELECT hash FROM audit WHERE session = ? AND session <> '' ORDER BY seq DESC LIMIT 1`
	// serialSQL is how Query read a session before it fetched chunks at
	// once: pages of 500 records through the index on one connection,
	// each record decoded by encoding/json.
	serialSQL = `SELECT seq, record, hash FROM audit WHERE seq > ? AND session = ? AND session <> '' ORDER BY seq LIMIT ?`
)

// diagnosis is what the SQLite planner does with the session statements,
// and how long the sample's sessions take to read the way Query used to.
type diagnosis struct {
	version                                   string // of the SQLite library
	seqsPlan, chunkPlan, headPlan, serialPlan string
	serial                                    timings
}

// diagnose opens its own read-only connection to the database file, reads
// the plans of the session statements and times the sample's sessions read
// with serialSQL, as Query read them before, for comparison. It is not
// Warden's code path.
func diagnose(ctx context.Context, path string, sample []*session, deadline time.Time) (*diagnosis, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %s for the query plans: %w", path, err)
	}
	uri := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String() + "?mode=ro"
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return nil, fmt.Errorf("open %s for the query plans: %w", path, err)
	}
	defer db.Close()
	d := &diagnosis{}
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&d.version); err != nil {
		return nil, fmt.Errorf("read the SQLite version: %w", err)
	}
	for _, p := range []struct {
		stmt string
		args []any
		plan *string
	}{
		{seqsSQL, []any{0, "x", 500}, &d.seqsPlan},
		{chunkSQL, []any{0, 9, "x", 500}, &d.chunkPlan},
		{headSQL, []any{"x"}, &d.headPlan},
		{serialSQL, []any{0, "x", 500}, &d.serialPlan},
	} {
		if *p.plan, err = queryPlan(ctx, db, p.stmt, p.args); err != nil {
			return nil, err
		}
	}
	for i, s := range sample {
		if i > 0 && time.Now().After(deadline) {
			break
		}
		start := time.Now()
		n, err := readSerial(ctx, db, s.id)
		if err != nil {
			return nil, err
		}
		if n != s.written {
			return nil, fmt.Errorf("serial read of session %s: %d records, %d were appended", s.id, n, s.written)
		}
		d.serial = append(d.serial, time.Since(start))
	}
	return d, nil
}

func queryPlan(ctx context.Context, db *sql.DB, stmt string, args []any) (string, error) {
	rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+stmt, args...)
	if err != nil {
		return "", fmt.Errorf("explain %q: %w", stmt, err)
	}
	defer rows.Close()
	plan := ""
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", fmt.Errorf("explain %q: %w", stmt, err)
		}
		if plan != "" {
			plan += "; "
		}
		plan += detail
	}
	return plan, rows.Err()
}

// readSerial reads a session as Query read it before (pages of 500 on one
// connection, each record decoded by encoding/json), with serialSQL, and
// returns how many records it has.
func readSerial(ctx context.Context, db *sql.DB, session string) (int, error) {
	var after int64
	n := 0
	for {
		rows, err := db.QueryContext(ctx, serialSQL, after, session, 500)
		if err != nil {
			return 0, fmt.Errorf("serial read of session %s: %w", session, err)
		}
		page := 0
		for rows.Next() {
			var data []byte
			var hash string
			if err := rows.Scan(&after, &data, &hash); err != nil {
				rows.Close()
				return 0, fmt.Errorf("serial read of session %s: %w", session, err)
			}
			var r audit.Record
			if err := json.Unmarshal(data, &r); err != nil {
				rows.Close()
				return 0, fmt.Errorf("decode record %d: %w", after, err)
			}
			page++
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
		if err := rows.Err(); err != nil {
			return 0, err
		}
		if page == 0 {
			return n, nil
		}
		n += page
	}
}

// pick returns n of the sessions, chosen at random without repeats.
func pick(rng *rand.Rand, from []*session, n int) []*session {
	s := slices.Clone(from)
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s[:min(n, len(s))]
}
