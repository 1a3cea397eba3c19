// Package sqlite is the embedded store of the local Warden server: one
// SQLite file (WAL journal, every commit fsynced) that holds the identity
// store (projects, agents, sessions, meta) and the audit trail. It runs on
// the pure-Go driver modernc.org/sqlite, so the binary needs no C toolchain.
//
// Connections. The file is opened twice: a writer pool of exactly one
// connection, through which every write goes, and a read-only pool of a few
// connections for reads. SQLite allows one writer at a time anyway; queueing
// writers on the Go side (database/sql hands the one connection to one
// waiter at a time) avoids the sleep-and-retry busy handler and the
// SQLITE_BUSY that several writing connections would meet inside SQLite,
// so the audit writer's batches and identity updates take turns without
// retries. In WAL mode readers never
// wait for the writer, so identity reads (Authenticate runs on every
// request) are not held up behind an audit commit's fsync. busy_timeout
// still covers the cases Go cannot queue: another process using the file,
// and checkpoints.
//
// Checkpoints. The writer does not checkpoint the WAL into the database file
// itself (wal_autocheckpoint=0): that would put a database-file fsync inside
// the commit of whichever audit batch crossed the threshold, and into the
// latency of the requests waiting on it. A third connection checkpoints in
// the background instead, once a second (see checkpoint), and Close leaves
// the file checkpointed.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/wardenhq/warden/shared/sortable"
)

// DB is an open Warden database. It implements identity.Store; Audit
// returns its audit trail. It is safe for concurrent use.
type DB struct {
	w    *sql.DB // the writer: one connection, every write goes through it
	r    *sql.DB // read-only connections
	ck   *sql.DB // the checkpointer's connection
	path string  // the database file
	stop chan struct{}
	done chan struct{}
	log  *AuditLog

	budgets *BudgetLedger
	stmts   statements
	lock    io.Closer // the lock file, held while the database is open
}

type config struct {
	maxBatch    int
	busyTimeout time.Duration
	readers     int
	// checkpointEvery is how often the background checkpoint runs, and
	// walLimit the WAL size past which it starts the WAL over.
	checkpointEvery time.Duration
	walLimit        int64
}

// Option configures Open.
type Option func(*config)

// WithMaxBatch sets how many audit records one commit may carry (512 by
// default). 1 turns group commit off: one fsync per record.
func WithMaxBatch(n int) Option {
	return func(c *config) { c.maxBatch = max(n, 1) }
}

// WithBusyTimeout sets how long a statement waits for a lock held by
// another connection, such as another process's, before failing with
// SQLITE_BUSY (5s by default).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// Open opens the database file at path, creating it if needed, with WAL
// journaling and synchronous=FULL (every commit is fsynced before it
// returns), brings its schema up to date and starts the audit writer. The
// path must name a file: the writer and the readers are separate
// connections, which an in-memory database would not share.
//
// One process at a time may have the file open: the budget ledger and the
// audit writer keep state in memory. Open takes an exclusive lock on
// path+".lock", held until Close (or the process ends), and refuses a
// file another process holds.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	lock, err := lockFile(abs + ".lock")
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	db, err := open(ctx, path, abs, opts)
	if err != nil {
		lock.Close()
		return nil, err
	}
	db.lock = lock
	return db, nil
}

func open(ctx context.Context, path, abs string, opts []Option) (*DB, error) {
	cfg := config{maxBatch: 512, busyTimeout: 5 * time.Second, readers: 4, checkpointEvery: time.Second, walLimit: 64 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	// A file: URI, so that SQLite applies mode=ro and a path holding '?'
	// or '#' is escaped rather than read as parameters.
	uri := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", cfg.busyTimeout.Milliseconds())

	w, err := sql.Open("sqlite", uri+"?"+busy+"&_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint(0)"+
		fmt.Sprintf("&_pragma=journal_size_limit(%d)", cfg.walLimit))
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	db := &DB{w: w}
	if err := db.init(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	if err := db.prepare(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	// The readers are opened once the writer has created the file and
	// switched it to WAL, which a read-only connection could not do.
	r, err := sql.Open("sqlite", uri+"?mode=ro&"+busy)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	r.SetMaxOpenConns(cfg.readers)
	r.SetMaxIdleConns(cfg.readers)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open database %q read-only: %w", path, err)
	}
	db.r = r
	ck, err := sql.Open("sqlite", uri+"?"+busy+"&_pragma=synchronous(FULL)")
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	ck.SetMaxOpenConns(1)
	db.ck, db.stop, db.done, db.path = ck, make(chan struct{}), make(chan struct{}), abs
	go db.checkpoints(cfg.checkpointEvery, cfg.walLimit)
	db.budgets = newBudgetLedger(db)
	db.log = newAuditLog(db, cfg.maxBatch)
	return db, nil
}

// checkpoints copies the WAL into the database file in the background
// until Close. A failed checkpoint is retried on the next tick; the WAL
// holds the data meanwhile.
func (db *DB) checkpoints(every time.Duration, walLimit int64) {
	defer close(db.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			if db.budgets.pending() {
				_ = db.budgets.flushNow(context.Background()) // on failure, the next batch or tick retries
			}
			db.checkpoint(walLimit)
		}
	}
}

// checkpoint copies the WAL into the database file. A PASSIVE checkpoint
// never blocks the writer, but under a steady stream of commits it never
// copies everything either: frames are appended while it runs, so the WAL
// is never started over and grows without bound (to gigabytes at 20,000
// records/s). So once the WAL passes walLimit (64 MiB), a second PASSIVE
// pass runs on the writer's own connection, holding off commits only
// while it copies what the first pass left (the frames written during
// it); then every frame is in the database file and the next commit
// starts the WAL over, truncating it to journal_size_limit. (A TRUNCATE
// checkpoint would block new writers while it waits, up to the busy
// timeout, for the writer's lock and for every reader: seconds of stalled
// commits.) A reader on an older snapshot can keep frames from being
// copied; the WAL then restarts after it is done.
func (db *DB) checkpoint(walLimit int64) {
	_, _ = db.ck.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	if fi, err := os.Stat(db.path + "-wal"); err != nil || fi.Size() <= walLimit {
		return
	}
	c, err := db.w.Conn(context.Background())
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
}

// init checks the journal mode and migrates the schema.
func (db *DB) init(ctx context.Context) error {
	var mode string
	if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal (is the file on a network file system?)", mode)
	}
	return db.inTx(ctx, func(ctx context.Context, c *sql.Tx) error {
		return migrate(ctx, c)
	})
}

// Close stops accepting audit records (Append then fails with
// audit.ErrClosed), commits those already queued, and closes the database.
// Calling it again does nothing.
func (db *DB) Close() error {
	if !db.log.close() {
		return nil
	}
	close(db.stop)
	<-db.done
	ledgerErr := db.budgets.close(context.Background())
	// Readers first: the last connection to close checkpoints the WAL into
	// the database file and removes it.
	err := errors.Join(ledgerErr, db.ck.Close(), db.r.Close(), db.w.Close())
	return errors.Join(err, db.lock.Close())
}

// Audit returns the audit trail.
func (db *DB) Audit() *AuditLog { return db.log }

// inTx runs fn in a write transaction on the writer connection and commits
// it. BEGIN IMMEDIATE takes the write lock up front, so a read-modify-write
// cannot fail half-way on a lock another process took in between. Once fn
// has succeeded the commit runs even if ctx is cancelled meanwhile: whether
// the change happened then depends on fn's outcome alone.
func (db *DB) inTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	c, err := db.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	// BEGIN IMMEDIATE (_txlock). The transaction does not end with ctx:
	// statements in fn see ctx, the commit does not.
	tx, err := c.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed { // fn or COMMIT failed, or fn panicked
			rollback(c, tx)
		}
	}()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return nil
}

// rollback ends the transaction tx open on c. SQLite rolls some failed
// transactions back by itself, and a failed COMMIT leaves tx done for
// database/sql but perhaps not for SQLite; if ROLLBACK fails for that or
// any other reason, the connection is discarded rather than handed back to
// the pool in an unknown state. The next write opens a fresh one.
func rollback(c *sql.Conn, tx *sql.Tx) {
	err := tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		_, err = c.ExecContext(context.Background(), "ROLLBACK")
	}
	if err != nil {
		c.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// statements are the writer's prepared statements, parsed once per
// connection rather than once per use (tx.StmtContext finds them).
type statements struct {
	insertAudit, writeCounter, insertHold, deleteHold *sql.Stmt
}

func (db *DB) prepare(ctx context.Context) error {
	for _, s := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&db.stmts.insertAudit, insertAudit},
		{&db.stmts.writeCounter, writeCounter},
		{&db.stmts.insertHold, insertHold},
		{&db.stmts.deleteHold, deleteHold},
	} {
		var err error
		if *s.stmt, err = db.w.PrepareContext(ctx, s.sql); err != nil {
			return fmt.Errorf("prepare %q: %w", s.sql, err)
		}
	}
	return nil
}

// migrations are the schema versions, in order; PRAGMA user_version holds
// how many have been applied. Append new ones, never edit old ones.
var migrations = []string{
	// 1: identity and audit.
	`CREATE TABLE projects (
		name          TEXT PRIMARY KEY,
		created_at    TEXT NOT NULL,
		frozen        INTEGER NOT NULL,
		frozen_reason TEXT NOT NULL,
		frozen_by     TEXT NOT NULL,
		enroll_hash   BLOB
	) STRICT;
	CREATE TABLE agents (
		project     TEXT NOT NULL,
		name        TEXT NOT NULL,
		created_at  TEXT NOT NULL,
		killed      INTEGER NOT NULL,
		kill_reason TEXT NOT NULL,
		killed_by   TEXT NOT NULL,
		PRIMARY KEY (project, name)
	) STRICT, WITHOUT ROWID;
	CREATE TABLE sessions (
		id          TEXT PRIMARY KEY,
		project     TEXT NOT NULL,
		agent       TEXT NOT NULL,
		labels      TEXT, -- JSON object; NULL for a nil map
		created_at  TEXT NOT NULL,
		expires_at  TEXT NOT NULL,
		killed      INTEGER NOT NULL,
		kill_reason TEXT NOT NULL,
		killed_by   TEXT NOT NULL,
		token_hash  BLOB
	) STRICT;
	CREATE INDEX sessions_by_created ON sessions (created_at);
	CREATE INDEX sessions_by_project ON sessions (project, created_at);
	CREATE TABLE meta (
		key   TEXT PRIMARY KEY,
		value BLOB
	) STRICT;
	CREATE TABLE audit (
		seq     INTEGER PRIMARY KEY,
		time    TEXT NOT NULL,
		code    TEXT NOT NULL,
		project TEXT NOT NULL,
		agent   TEXT NOT NULL,
		session TEXT NOT NULL,
		ref     TEXT NOT NULL,
		record  TEXT NOT NULL -- the whole audit.Record as JSON
	) STRICT;
	CREATE INDEX audit_by_time ON audit (time);
	CREATE INDEX audit_by_code ON audit (code);
	CREATE INDEX audit_by_agent ON audit (project, agent);
	CREATE INDEX audit_by_session ON audit (session) WHERE session <> '';
	CREATE INDEX audit_by_ref ON audit (ref) WHERE ref <> '';`,
	// 2: fewer audit indexes. Each is a page written and fsynced with every
	// decision; time ranges follow seq, which grows with time, and code or
	// agent filters are served by scanning a session's or a seq range's
	// records.
	`DROP INDEX audit_by_time;
	DROP INDEX audit_by_code;
	DROP INDEX audit_by_agent;`,
	// 3: the hash chain. Each record's hash, as a column, so that the heads
	// of the log and of a session are found without decoding records.
	// Records written before this version have no hash, and verify as a
	// break at the first of them.
	`ALTER TABLE audit ADD COLUMN hash TEXT NOT NULL DEFAULT '';`,
	// 4: signed digests of the trail.
	`CREATE TABLE audit_digests (
		seq    INTEGER PRIMARY KEY,
		digest TEXT NOT NULL -- the whole audit.Digest as JSON
	) STRICT;`,
	// 5: no index by ref: nothing looks records up by it (replay pairs a
	// decision with its outcome in memory), and its random keys cost a page
	// written per record.
	`DROP INDEX audit_by_ref;`,
	// 6: retention. Records that are archived and older than the retention
	// period are deleted from the front of the trail. What the chains need
	// to go on is kept: the last deleted record (meta key
	// audit-pruned-through) and, for each session whose newest record was
	// deleted, that record's hash, to which the session's next record links.
	// Deletion stops at the end of a signed digest, found by its to_seq.
	`CREATE TABLE audit_session_heads (
		session TEXT PRIMARY KEY,
		seq     INTEGER NOT NULL,
		hash    TEXT NOT NULL
	) STRICT, WITHOUT ROWID;
	ALTER TABLE audit_digests ADD COLUMN to_seq INTEGER NOT NULL DEFAULT 0;
	UPDATE audit_digests SET to_seq = json_extract(digest, '$.to_seq');
	CREATE INDEX audit_digests_by_to_seq ON audit_digests (to_seq);`,
	// 7: budgets. A counter per budget, scope value (project,
	// project/agent or session), period and window start: spent and held
	// in nano-dollars and tokens, and the alert thresholds already
	// reported (a JSON array). A hold per open reservation, with the
	// counters it holds on; a hold a crash left unsettled stays, and keeps
	// its worst case held.
	`CREATE TABLE budget_counters (
		budget       TEXT NOT NULL,
		scope        TEXT NOT NULL,
		period       TEXT NOT NULL,
		window_start TEXT NOT NULL,
		spent_usd    INTEGER NOT NULL,
		spent_tokens INTEGER NOT NULL,
		held_usd     INTEGER NOT NULL,
		held_tokens  INTEGER NOT NULL,
		alerted      TEXT NOT NULL,
		PRIMARY KEY (budget, scope, period, window_start)
	) STRICT, WITHOUT ROWID;
	CREATE TABLE budget_holds (
		id           TEXT PRIMARY KEY,
		created_at   TEXT NOT NULL,
		worst_usd    INTEGER NOT NULL,
		worst_tokens INTEGER NOT NULL,
		charges      TEXT NOT NULL -- JSON: the counters held on, with caps and thresholds
	) STRICT, WITHOUT ROWID;`,
	// 8: a session can be paused (by the watchdog) until a human resumes it.
	`ALTER TABLE sessions ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE sessions ADD COLUMN pause_reason TEXT NOT NULL DEFAULT '';
	ALTER TABLE sessions ADD COLUMN paused_by TEXT NOT NULL DEFAULT '';`,
	// approvals: the whole approval.Approval as JSON, with the columns
	// looked up by.
	`CREATE TABLE approvals (
		id      TEXT PRIMARY KEY,
		key     TEXT NOT NULL,
		state   TEXT NOT NULL,
		created TEXT NOT NULL,
		expires TEXT NOT NULL,
		data    TEXT NOT NULL
	) STRICT;
	CREATE INDEX approvals_by_key ON approvals (key);
	CREATE INDEX approvals_due ON approvals (expires) WHERE state = 'pending';
	CREATE INDEX approvals_by_created ON approvals (created);`,
}

// migrate applies the migrations the database has not seen, inside the
// caller's write transaction.
func migrate(ctx context.Context, c *sql.Tx) error {
	var version int
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this build knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := c.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
	}
	// PRAGMA takes no bound parameters; the value is an int.
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	return nil
}

// formatTime stores t so that text order is time order (sortable.Time).
func formatTime(t time.Time) (string, error) { return sortable.Time(t) }

func parseTime(s string) (time.Time, error) {
	t, err := sortable.ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil
}
