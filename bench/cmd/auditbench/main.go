// Command auditbench measures Warden's audit trail at scale against the
// targets of the issue: sustained durable ingest, querying one session out
// of a trail of millions of records, replaying a 10,000-record session, and
// verifying the whole hash chain. It prints a markdown report on stdout;
// progress goes to stderr.
//
// It builds the trail in a temporary SQLite database through the real
// durable path, sqlite.AuditLog.Append, from many goroutines at once so
// that group commit batches them: one session per goroutine at a time, its
// records in order (login, then tool calls, each a decision and, when
// allowed, its outcome). Then it closes and reopens the database, puts the
// OS page cache in the state --page-cache asks for (as the ingest left it,
// warm or cold) and times AuditLog.Query by session (paged as the server
// pages it), Query plus audit.Replay of a 10,000-record session, and
// audit.VerifyStored of the whole trail. Last it shows SQLite's plans for
// the session statements and, for comparison, times the same sessions read
// as Query read them before it fetched chunks at once. The database is
// removed at the end unless --keep names a directory to leave it in;
// --reuse reads a kept one again, without the ingest.
//
// The ingest stops early, and the report says so, when --ingest-time has
// passed or the database outgrows --max-disk or the disk's free space
// falls under --min-free; each read phase stops taking samples when its
// share of --read-time has passed.
//
// Usage, from bench/:
//
//	go run ./cmd/auditbench [--records 500000] [--appenders 256] [--ingest-time 4m] [--keep DIR]
//	go run ./cmd/auditbench --records 10000000 --reuse DIR [--page-cache warm|cold]
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wardenhq/warden/bench/internal/benchmain"
	"github.com/wardenhq/warden/shared/sqlite"
)

func main() {
	var cfg config
	fs := benchmain.FlagSet("auditbench")
	fs.IntVar(&cfg.records, "records", defaultRecords, "records in the trail (the issue's scale is 10,000,000; see the README)")
	fs.IntVar(&cfg.sessions, "sessions", 0, "sessions in the trail (default: one per 500 records)")
	fs.IntVar(&cfg.large, "large", 3, "sessions of exactly 10,000 records among them")
	fs.IntVar(&cfg.appenders, "appenders", 256, "goroutines appending at once, each running one session at a time")
	fs.DurationVar(&cfg.ingestTime, "ingest-time", 4*time.Minute, "stop the ingest after this long, and measure the trail built so far")
	fs.IntVar(&cfg.samples, "samples", 1000, "ordinary sessions to query")
	fs.IntVar(&cfg.largeQueries, "large-queries", 200, "queries of the large sessions, cycling through them")
	fs.IntVar(&cfg.replays, "replays", 5, "replays of a large session; the median is reported")
	fs.DurationVar(&cfg.readTime, "read-time", 2*time.Minute, "time budget of the read phases together: ordinary queries 40%, large ones, replays and the comparison with the serial read 20% each (each runs at least once)")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the trail's layout and contents")
	fs.StringVar(&cfg.dir, "dir", "", "directory to make the temporary database in (default: the system's temporary directory)")
	fs.StringVar(&cfg.keep, "keep", "", "build the database in this directory and keep it")
	fs.StringVar(&cfg.reuse, "reuse", "", "skip the ingest and measure the reads on the trail an earlier run kept in this directory (--keep), built with the same --records, --sessions, --large and --seed")
	fs.StringVar(&cfg.pageCache, "page-cache", "as-is", "the OS page cache before the reads: as-is (as the ingest left it), warm (read the database file through first) or cold (drop it: echo 3 > /proc/sys/vm/drop_caches, as root)")
	fs.Float64Var(&cfg.maxDiskGiB, "max-disk", 30, "stop the ingest once the database and its WAL take this many GiB")
	fs.Float64Var(&cfg.minFreeGiB, "min-free", 15, "stop the ingest once the file system holding the database has less than this many GiB free")
	benchmain.Run(fs, func(ctx context.Context, stdout, stderr io.Writer) error {
		return run(ctx, cfg, stdout, stderr)
	})
}

// defaultRecords is the trail's default size, not the 10,000,000:
// on the 2-core development machine the durable path ingests 500,000 of
// these records in under half a minute and the whole run takes a few
// minutes, where 10,000,000 take about 8 minutes of ingest and 11 GiB of
// disk (see the README).
const defaultRecords = 500_000

// config is what a run is made with.
type config struct {
	records, sessions, large, appenders int
	samples, largeQueries, replays      int
	ingestTime, readTime                time.Duration
	seed                                uint64
	dir, keep, reuse, pageCache         string
	maxDiskGiB, minFreeGiB              float64
}

func (c *config) check() error {
	if c.sessions == 0 {
		c.sessions = max(c.records/500, 1)
	}
	switch {
	case c.records < 1:
		return fmt.Errorf("--records %d: want at least 1", c.records)
	case c.large < 1:
		return fmt.Errorf("--large %d: want at least one session of %d records to replay", c.large, largeSize)
	case c.appenders < 1:
		return fmt.Errorf("--appenders %d: want at least 1", c.appenders)
	case c.ingestTime <= 0:
		return fmt.Errorf("--ingest-time %v: want a positive duration", c.ingestTime)
	case c.readTime <= 0:
		return fmt.Errorf("--read-time %v: want a positive duration", c.readTime)
	case !(c.maxDiskGiB > 0) || c.minFreeGiB < 0:
		return fmt.Errorf("--max-disk %v, --min-free %v: want a positive size and a size of zero or more", c.maxDiskGiB, c.minFreeGiB)
	case c.samples < 1 || c.largeQueries < 1 || c.replays < 1:
		return fmt.Errorf("--samples %d, --large-queries %d, --replays %d: want at least 1 each", c.samples, c.largeQueries, c.replays)
	case c.pageCache != "as-is" && c.pageCache != "warm" && c.pageCache != "cold":
		return fmt.Errorf("--page-cache %q: want as-is, warm or cold", c.pageCache)
	case c.reuse != "" && c.keep != "":
		return fmt.Errorf("--reuse %s with --keep %s: a reused trail is kept anyway", c.reuse, c.keep)
	}
	return nil
}

// result is everything a run measured, for the report.
type result struct {
	cfg       config
	started   time.Time
	took      time.Duration
	dir       string
	sessions  []*session
	planned   int64
	ingest    *ingested
	walBefore int64         // WAL bytes when the ingest ended
	closeTook time.Duration // closing after the ingest: the WAL checkpoint
	dbBytes   int64         // database, WAL and shared memory files after the run
	cache     *cacheState
	small     *queried
	large     *queried
	replay    *replayed
	verify    *verified
	diagnosis *diagnosis
}

func run(ctx context.Context, cfg config, out, progress io.Writer) (err error) {
	if err := cfg.check(); err != nil {
		return err
	}
	res := &result{cfg: cfg, started: time.Now()}
	dir, err := workDir(cfg)
	if err != nil {
		return err
	}
	if cfg.keep == "" && cfg.reuse == "" {
		defer func() {
			if rmErr := os.RemoveAll(dir); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("remove %s: %w", dir, rmErr))
			}
		}()
	}
	res.dir = dir
	path := filepath.Join(dir, "audit.db")

	rng := rand.New(rand.NewPCG(cfg.seed, 0xa0d17))
	res.sessions, err = plan(rng, cfg.records, cfg.sessions, cfg.large)
	if err != nil {
		return err
	}
	res.planned = int64(cfg.records)

	// 1. Ingest through the durable path, unless the trail is reused.
	if cfg.reuse == "" {
		if err := build(ctx, res, path, progress); err != nil {
			return err
		}
	}

	// 2–4. Read it back from a freshly opened database.
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close %s: %w", path, cerr))
		}
	}()
	if cfg.reuse != "" {
		if res.ingest, err = reused(ctx, db, res.sessions, path, progress); err != nil {
			return err
		}
	}
	if res.cache, err = prepareCache(cfg.pageCache, path, progress); err != nil {
		return err
	}
	if err := measure(ctx, res, db, path, rng, progress); err != nil {
		return err
	}
	res.dbBytes = fileSize(path) + fileSize(path+"-wal") + fileSize(path+"-shm")
	res.took = time.Since(res.started)
	writeReport(out, res)
	if rep := res.verify.report; !rep.OK {
		return fmt.Errorf("the trail does not verify: %v %s", rep.Break, rep.DigestError)
	}
	return nil
}

// build makes the trail at path through the durable Append, then closes
// the database, which checkpoints its WAL.
func build(ctx context.Context, res *result, path string, progress io.Writer) error {
	cfg := res.cfg
	fmt.Fprintf(progress, "auditbench: %s records in %s sessions into %s, %d appenders, ingest budget %s\n",
		thousands(res.planned), thousands(int64(len(res.sessions))), path, cfg.appenders, cfg.ingestTime)
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	guard, status := diskGuard(cfg, res.dir, path)
	res.ingest, err = ingest(ctx, db.Audit(), res.sessions, cfg.appenders, cfg.ingestTime, guard, status, progress)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	res.walBefore = fileSize(path + "-wal")
	fmt.Fprintf(progress, "closing the database (checkpoints a %s WAL)\n", bytesIEC(res.walBefore))
	start := time.Now()
	if err := db.Close(); err != nil {
		return fmt.Errorf("close %s after the ingest: %w", path, err)
	}
	res.closeTook = time.Since(start)
	return nil
}

// reused checks that the trail at path is the whole planned trail, which
// an earlier run with the same layout flags built, and marks every session
// written. The ingest is not measured: the outcome carries the count only.
// Seq is gapless and every planned record belongs to a session, so a trail
// whose last seq is the planned count holds every session whole.
func reused(ctx context.Context, db *sqlite.DB, sessions []*session, path string, progress io.Writer) (*ingested, error) {
	var planned int64
	for _, s := range sessions {
		planned += int64(s.size)
	}
	last, err := db.Audit().Latest(ctx)
	if err != nil {
		return nil, err
	}
	if last != planned {
		return nil, fmt.Errorf("--reuse: %s holds %s records, not the %s planned: pass the --records, --sessions, --large and --seed it was built with, and reuse only a trail whose ingest completed",
			path, thousands(last), thousands(planned))
	}
	for _, s := range sessions {
		s.written = s.size
	}
	fmt.Fprintf(progress, "auditbench: reading the %s-record trail kept in %s\n", thousands(last), path)
	return &ingested{records: last, complete: len(sessions)}, nil
}

// measure runs the query, replay, verify and diagnosis phases.
func measure(ctx context.Context, res *result, db *sqlite.DB, path string, rng *rand.Rand, progress io.Writer) error {
	var ordinary, large []*session
	for _, s := range res.sessions {
		switch {
		case s.large && s.written > 0:
			large = append(large, s)
		case !s.large && s.written > 0:
			ordinary = append(ordinary, s)
		}
	}
	if len(large) == 0 || len(ordinary) == 0 {
		return fmt.Errorf("the ingest stopped before a large session and an ordinary one were begun (%d records): raise --ingest-time or lower --records", res.ingest.records)
	}
	// The large sessions read are the complete ones; if the ingest stopped
	// before any was, the longest begun, and the report says how long.
	slices.SortStableFunc(large, func(a, b *session) int { return cmp.Compare(b.written, a.written) })
	if i := slices.IndexFunc(large, func(s *session) bool { return s.written < s.size }); i > 0 {
		large = large[:i]
	} else if i == 0 {
		large = large[:1]
	}
	l := db.Audit()
	share := res.cfg.readTime / 5
	sample := pick(rng, ordinary, res.cfg.samples)
	var err error
	if res.small, err = querySessions(ctx, l, sample, time.Now().Add(2*share), "ordinary sessions", progress); err != nil {
		return err
	}
	largeRuns := make([]*session, res.cfg.largeQueries)
	for i := range largeRuns {
		largeRuns[i] = large[i%len(large)]
	}
	if res.large, err = querySessions(ctx, l, largeRuns, time.Now().Add(share), "large sessions", progress); err != nil {
		return err
	}
	if res.replay, err = replaySessions(ctx, l, large, res.cfg.replays, time.Now().Add(share), progress); err != nil {
		return err
	}
	if res.verify, err = verify(ctx, l, progress); err != nil {
		return err
	}
	if res.diagnosis, err = diagnose(ctx, path, sample, time.Now().Add(share)); err != nil {
		return err
	}
	return nil
}

// workDir returns the directory the database goes in: --reuse's, which
// must hold one; --keep's, which must not; or a new temporary one.
func workDir(cfg config) (string, error) {
	if cfg.reuse != "" {
		if _, err := os.Stat(filepath.Join(cfg.reuse, "audit.db")); err != nil {
			return "", fmt.Errorf("--reuse %s: %w", cfg.reuse, err)
		}
		return cfg.reuse, nil
	}
	if cfg.keep == "" {
		dir, err := os.MkdirTemp(cfg.dir, "auditbench-")
		if err != nil {
			return "", fmt.Errorf("create a temporary directory: %w", err)
		}
		return dir, nil
	}
	if err := os.MkdirAll(cfg.keep, 0o755); err != nil {
		return "", fmt.Errorf("--keep %s: %w", cfg.keep, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.keep, "audit.db")); err == nil {
		return "", fmt.Errorf("--keep %s: audit.db exists there; the benchmark builds a new trail (--reuse reads it again)", cfg.keep)
	}
	return cfg.keep, nil
}

// diskGuard returns the ingest's guard, which stops it before the
// database outgrows --max-disk or the file system falls under --min-free
// (under steady load the WAL is never restarted, so it grows with every
// commit),
// and its status, which reports those sizes.
func diskGuard(cfg config, dir, path string) (guard, status func() string) {
	const gib = 1 << 30
	used := func() (db, wal int64) { return fileSize(path), fileSize(path + "-wal") }
	guard = func() string {
		db, wal := used()
		if float64(db+wal) >= cfg.maxDiskGiB*gib {
			return fmt.Sprintf("the database and its WAL reached %s (--max-disk %v GiB)", bytesIEC(db+wal), cfg.maxDiskGiB)
		}
		if free, err := freeBytes(dir); err == nil && float64(free) < cfg.minFreeGiB*gib {
			return fmt.Sprintf("the file system had %s free (--min-free %v GiB)", bytesIEC(free), cfg.minFreeGiB)
		}
		return ""
	}
	status = func() string {
		db, wal := used()
		s := fmt.Sprintf("database %s, WAL %s", bytesIEC(db), bytesIEC(wal))
		if free, err := freeBytes(dir); err == nil {
			s += fmt.Sprintf(", %s free", bytesIEC(free))
		}
		return s
	}
	return guard, status
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
