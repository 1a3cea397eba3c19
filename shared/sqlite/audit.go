package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

// AuditLog is the audit trail in the database. It implements audit.Sink and
// audit.Reader.
//
// Append uses group commit. Callers hand their records to one writer
// goroutine, which takes every record waiting (up to the batch size),
// inserts them in one transaction and commits it: one fsync for the whole
// batch, so that under load the cost of durability is shared instead of
// queued. Only then is each caller woken with its record's Seq. If the
// transaction fails, every caller in the batch gets the error and the
// transaction is rolled back: no record is acknowledged before it is
// durable, and no caller of a failed batch is told its record was kept.
// (After an I/O error inside COMMIT itself a refused record may still turn
// up after a crash; the caller, told it failed, did not act, which is the
// safe side.) A record that cannot be encoded, such as one whose Args is
// not JSON, is refused alone and the rest of its batch goes on.
type AuditLog struct {
	db    *DB
	queue chan *appendReq
	done  chan struct{} // closed when the writer has stopped

	mu     sync.RWMutex // held for reading while sending on queue
	closed bool

	heads chainHeads

	// batches and records count successful commits and the records they
	// carried, for the benchmarks.
	batches, records atomic.Int64
}

var (
	_ audit.DeferredSink = (*AuditLog)(nil)
	_ audit.Reader       = (*AuditLog)(nil)
	_ audit.DigestStore  = (*AuditLog)(nil)
)

// The states of an append request. The writer and the caller race to move
// it out of pending: the writer to take it into a batch, the caller to give
// up when its context ends.
const (
	pending int32 = iota
	taken
	abandoned
)

type appendReq struct {
	rec   audit.Record
	state atomic.Int32
	err   error         // the outcome, set by the writer
	done  chan struct{} // closed by the writer once rec.Seq or err is set
	// then, for a deferred record, is called by the writer with the outcome.
	then func(audit.Record, error)
}

// deferredWait is how long a batch of deferred records only waits for a
// record someone waits for, to be committed with it.
const deferredWait = 5 * time.Millisecond

func newAuditLog(db *DB, maxBatch int) *AuditLog {
	l := &AuditLog{db: db, queue: make(chan *appendReq, maxBatch), done: make(chan struct{})}
	go l.write(maxBatch)
	return l
}

// Append implements audit.Sink: it returns r with its Seq once r is
// committed and fsynced. A context that ends before the writer has taken r
// makes Append return the context's error, and r is not written. Once the
// writer has taken r, Append waits for the commit and reports its outcome
// whatever the context does, so that a record is never stored while its
// caller was told it was not, or the other way round. After Close, Append
// fails with audit.ErrClosed.
func (l *AuditLog) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	req := &appendReq{rec: r, done: make(chan struct{})}
	if err := l.enqueue(ctx, req); err != nil {
		return audit.Record{}, fmt.Errorf("append audit record %s: %w", r.ID, err)
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		if req.state.CompareAndSwap(pending, abandoned) {
			return audit.Record{}, fmt.Errorf("append audit record %s: %w", r.ID, ctx.Err())
		}
		<-req.done
	}
	if req.err != nil {
		return audit.Record{}, fmt.Errorf("append audit record %s: %w", r.ID, req.err)
	}
	return req.rec, nil
}

func (l *AuditLog) enqueue(ctx context.Context, req *appendReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return audit.ErrClosed
	}
	select {
	case l.queue <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AppendDeferred implements audit.DeferredSink: r is committed with the
// next batch that carries a record someone waits for, or after
// deferredWait, so that an outcome recorded after its action shares that
// batch's fsync rather than costing one of its own. done runs on the
// writer goroutine.
func (l *AuditLog) AppendDeferred(r audit.Record, done func(audit.Record, error)) {
	req := &appendReq{rec: r, done: make(chan struct{}), then: done}
	if err := l.enqueue(context.Background(), req); err != nil {
		done(audit.Record{}, fmt.Errorf("append audit record %s: %w", r.ID, err))
	}
}

// close stops Append and waits for the writer to commit what was queued.
// It reports false if the log was already closed.
func (l *AuditLog) close() bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	return true
}

// write is the writer goroutine. It blocks for the first request, then
// takes whatever else is already queued, without waiting for more: a lone
// record someone waits for is committed at once, and records that arrive
// during a commit form the next batch. A batch of deferred records only
// waits a little for company (awaitWaited).
func (l *AuditLog) write(maxBatch int) {
	defer close(l.done)
	batch := make([]*appendReq, 0, maxBatch)
	for req := range l.queue {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < maxBatch {
			select {
			case req, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, req)
			default:
				break fill
			}
		}
		batch = l.awaitWaited(batch, maxBatch)
		l.commit(batch)
	}
}

// awaitWaited returns batch as it is if someone waits for one of its
// records, and otherwise with what arrives in the next deferredWait, up to
// the first record someone waits for.
func (l *AuditLog) awaitWaited(batch []*appendReq, maxBatch int) []*appendReq {
	for _, req := range batch {
		if req.then == nil {
			return batch
		}
	}
	t := time.NewTimer(deferredWait)
	defer t.Stop()
	for len(batch) < maxBatch {
		select {
		case req, ok := <-l.queue:
			if !ok {
				return batch
			}
			batch = append(batch, req)
			if req.then == nil {
				return batch
			}
		case <-t.C:
			return batch
		}
	}
	return batch
}

const insertAudit = `INSERT INTO audit (seq, time, code, project, agent, session, ref, record, hash)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// sessionHead returns the hash of the newest record of session, from the
// batch's own heads or the table; "" for a new session or no session.
func (l *AuditLog) sessionHead(ctx context.Context, c *sql.Tx, heads map[string]string, session string) (string, error) {
	if session == "" {
		return "", nil
	}
	if h, ok := heads[session]; ok {
		return h, nil
	}
	if h, ok := l.heads.sessions[session]; ok {
		heads[session] = h
		return h, nil
	}
	var h string
	// "session <> ''" lets SQLite use the partial index audit_by_session.
	err := c.QueryRowContext(ctx, `SELECT hash FROM audit WHERE session = ? AND session <> '' ORDER BY seq DESC LIMIT 1`, session).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		// A session whose records retention deleted goes on from its head.
		err = c.QueryRowContext(ctx, `SELECT hash FROM audit_session_heads WHERE session = ?`, session).Scan(&h)
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read the head of session %s: %w", session, err)
	}
	heads[session] = h
	return h, nil
}

// chainHeads is what the writer's last committed batch left: the log's
// head and, for the sessions written lately, theirs. Only the writer
// goroutine uses it.
type chainHeads struct {
	known    bool
	seq      int64
	hash     string
	sessions map[string]string
}

// maxSessionHeads bounds chainHeads.sessions; past it, the map starts over.
const maxSessionHeads = 4096

// update records the outcome of a batch that ended with the log's head at
// seq, hash and the sessions' at sessions; after a failure every head is
// read from the table again.
func (h *chainHeads) update(ok bool, seq int64, hash string, sessions map[string]string) {
	if !ok {
		*h = chainHeads{}
		return
	}
	if h.sessions == nil || len(h.sessions)+len(sessions) > maxSessionHeads {
		h.sessions = make(map[string]string, len(sessions))
	}
	h.known, h.seq, h.hash = true, seq, hash
	maps.Copy(h.sessions, sessions)
}

// commit writes one batch in one transaction and wakes its callers.
func (l *AuditLog) commit(batch []*appendReq) {
	live := batch[:0]
	for _, req := range batch {
		if req.state.CompareAndSwap(pending, taken) {
			live = append(live, req)
		}
	}
	if len(live) == 0 {
		return
	}
	// The writer's own context: a batch carries many callers, and once
	// taken their records are committed or failed as one.
	ctx := context.Background()
	n := 0
	ledgerDone := func(error) {}
	sessions := map[string]string{}
	var headSeq int64
	var headHash string
	err := l.db.inTx(ctx, func(ctx context.Context, c *sql.Tx) error {
		// Seq continues from the table, so that it stays gapless across
		// restarts and failed batches, and so do the chain heads: the
		// log's, and each session's as it is met, carried through the
		// batch. The writer keeps what its last batch left (l.heads)
		// rather than read it again, and reads the table after a failed
		// batch.
		last, head := l.heads.seq, l.heads.hash
		if !l.heads.known {
			var err error
			if last, head, err = chainHead(ctx, c); err != nil {
				return err
			}
		}
		stmt := c.StmtContext(ctx, l.db.stmts.insertAudit)
		for _, req := range live {
			rec := req.rec
			rec.Seq = last + 1
			sessionHead, err := l.sessionHead(ctx, c, sessions, rec.Session)
			if err != nil {
				return err
			}
			canonical, err := audit.Link(&rec, head, sessionHead)
			if err != nil {
				req.err = err // refused alone: the batch goes on without it
				continue
			}
			args, err := insertArgs(rec, canonical)
			if err != nil {
				req.err = err
				continue
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("insert seq %d: %w", rec.Seq, err)
			}
			req.rec = rec
			last, head = rec.Seq, rec.Hash
			if rec.Session != "" {
				sessions[rec.Session] = rec.Hash
			}
			n++
		}
		// The budget ledger's changes go with the batch: a reservation
		// made before its decision was queued is durable with it.
		headSeq, headHash = last, head
		var err error
		ledgerDone, err = l.db.budgets.flush(ctx, c)
		return err
	})
	ledgerDone(err)
	l.heads.update(err == nil, headSeq, headHash, sessions)
	if err == nil {
		l.batches.Add(1)
		l.records.Add(int64(n))
	}
	for _, req := range live {
		if req.err == nil {
			req.err = err
		}
		close(req.done)
		if req.then != nil {
			if req.err != nil {
				req.then(audit.Record{}, fmt.Errorf("append audit record %s: %w", req.rec.ID, req.err))
			} else {
				req.then(req.rec, nil)
			}
		}
	}
}

// insertArgs makes the arguments of insertAudit: the indexed columns, the
// record as its canonical encoding (which is JSON, and what its hash is
// computed over), and the hash.
func insertArgs(r audit.Record, canonical []byte) ([]any, error) {
	at, err := formatTime(r.Time)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return []any{r.Seq, at, string(r.Code), r.Project, r.Agent, r.Session, r.Ref, string(canonical), r.Hash}, nil
}

// decodeRow turns a stored record, its canonical encoding, back into an
// audit.Record.
func decodeRow(seq int64, data, hash string) (audit.Record, error) {
	r, err := audit.DecodeCanonical(data)
	if err != nil {
		return r, fmt.Errorf("decode audit record %d: %w", seq, err)
	}
	r.Seq = seq
	if hash != "" {
		r.Hash = hash
	}
	return r, nil
}

var _ audit.StoredReader = (*AuditLog)(nil)

// EachStored implements audit.StoredReader: the records after seq after,
// in order, as stored, without decoding them, up to the last record there
// was when it started.
//
// It is what verification waits on: reading SQLite costs more than
// hashing and checking what is read. So two connections of the read pool
// read at once, each a chunk of 4,096 seqs in turn (each chunk its own
// short read transaction, which does not hold up the checkpointer), and
// the chunks are handed to fn in order. They read below database/sql,
// through the driver's rows: a record's encoding is copied once out of
// SQLite into a slice the driver makes for that value alone (database/sql
// would copy it again, and convert every column), and fn may keep it. For
// the scan each connection maps the database file (mmap_size) instead of
// reading it a page per system call; SQLite maps at most the first 2 GiB
// (the limit the driver is built with) and reads the rest as before.
func (l *AuditLog) EachStored(ctx context.Context, after int64, fn func(audit.StoredRecord) error) error {
	var last int64
	if err := l.db.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit`).Scan(&last); err != nil {
		return fmt.Errorf("read audit after %d: %w", after, err)
	}
	const readers, span = 2, 4096
	type chunk struct {
		recs []audit.StoredRecord
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// Reader r reads chunks r, r+readers, r+2*readers… into chunks[r].
	chunks := make([]chan chunk, readers)
	for r := range chunks {
		chunks[r] = make(chan chunk, 1)
		wg.Go(func() {
			defer close(chunks[r])
			send := func(c chunk) bool {
				select {
				case chunks[r] <- c:
					return c.err == nil
				case <-ctx.Done():
					return false
				}
			}
			c, err := l.db.r.Conn(ctx)
			if err != nil {
				send(chunk{err: fmt.Errorf("read audit after %d: %w", after, err)})
				return
			}
			defer c.Close()
			if _, err := c.ExecContext(ctx, "PRAGMA mmap_size = 2147418112"); err != nil {
				send(chunk{err: fmt.Errorf("map the database for the audit scan: %w", err)})
				return
			}
			// The connection goes back to the pool as Open made it.
			defer c.ExecContext(context.WithoutCancel(ctx), "PRAGMA mmap_size = 0")
			for lo := after + int64(r)*span; lo < last; lo += readers * span {
				var ch chunk
				ch.err = c.Raw(func(dc any) error {
					var err error
					ch.recs, err = readStoredChunk(ctx, dc, lo, min(lo+span, last))
					return err
				})
				if !send(ch) {
					return
				}
			}
		})
	}
	for i, lo := 0, after; lo < last; i, lo = i+1, lo+span {
		ch, ok := <-chunks[i%readers]
		if !ok { // the reader stopped for ctx
			return ctx.Err()
		}
		if ch.err != nil {
			return ch.err
		}
		for _, s := range ch.recs {
			if err := fn(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// readStoredChunk reads the records with seqs in (lo, hi] for EachStored,
// through the driver connection dc.
func readStoredChunk(ctx context.Context, dc any, lo, hi int64) (recs []audit.StoredRecord, err error) {
	q, ok := dc.(driver.QueryerContext)
	if !ok {
		return nil, fmt.Errorf("read audit: driver connection %T cannot query", dc)
	}
	rows, err := q.QueryContext(ctx, `SELECT seq, session, CAST(record AS BLOB), hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq`,
		[]driver.NamedValue{{Ordinal: 1, Value: lo}, {Ordinal: 2, Value: hi}})
	if err != nil {
		return nil, fmt.Errorf("read audit records %d to %d: %w", lo+1, hi, err)
	}
	defer func() {
		if cerr := rows.Close(); err == nil && cerr != nil {
			recs, err = nil, fmt.Errorf("read audit records %d to %d: %w", lo+1, hi, cerr)
		}
	}()
	recs = make([]audit.StoredRecord, 0, hi-lo)
	row := make([]driver.Value, 4)
	for {
		if err := rows.Next(row); err == io.EOF {
			return recs, nil
		} else if err != nil {
			return nil, fmt.Errorf("read audit records %d to %d: %w", lo+1, hi, err)
		}
		seq, ok1 := row[0].(int64)
		session, ok2 := row[1].(string)
		canonical, ok3 := row[2].([]byte)
		hash, ok4 := row[3].(string)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, fmt.Errorf("read audit records %d to %d: a row of %T, %T, %T, %T", lo+1, hi, row[0], row[1], row[2], row[3])
		}
		recs = append(recs, audit.StoredRecord{Seq: seq, Session: session, Canonical: canonical, Hash: hash})
	}
}

// After implements audit.Reader.
func (l *AuditLog) After(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	return l.query(ctx, "seq > ?", []any{after}, limit)
}

// Latest implements audit.Reader.
func (l *AuditLog) Latest(ctx context.Context) (int64, error) {
	seq, _, err := chainHead(ctx, l.db.r)
	return seq, err
}

// chainHead returns the Seq and hash of the newest record: the last in the
// table or, when retention has deleted every record, the anchor.
func chainHead(ctx context.Context, c queryer) (int64, string, error) {
	var seq int64
	var hash string
	err := c.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		a, err := readAnchor(ctx, c)
		return a.Seq, a.Hash, err
	}
	if err != nil {
		return 0, "", fmt.Errorf("read the chain head: %w", err)
	}
	return seq, hash, nil
}

// AppendDigest implements audit.DigestStore.
func (l *AuditLog) AppendDigest(ctx context.Context, d audit.Digest) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode digest %d: %w", d.Seq, err)
	}
	return l.db.inTx(ctx, func(ctx context.Context, c *sql.Tx) error {
		var last int64
		if err := c.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_digests`).Scan(&last); err != nil {
			return fmt.Errorf("read the last digest: %w", err)
		}
		if d.Seq != last+1 {
			return fmt.Errorf("digest %d does not follow digest %d", d.Seq, last)
		}
		_, err := c.ExecContext(ctx, `INSERT INTO audit_digests (seq, digest, to_seq) VALUES (?, ?, ?)`, d.Seq, string(data), d.ToSeq)
		return err
	})
}

// LastDigest implements audit.DigestStore.
func (l *AuditLog) LastDigest(ctx context.Context) (audit.Digest, error) {
	var data string
	err := l.db.r.QueryRowContext(ctx, `SELECT digest FROM audit_digests ORDER BY seq DESC LIMIT 1`).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Digest{}, audit.ErrNoDigest
	}
	if err != nil {
		return audit.Digest{}, fmt.Errorf("read the last digest: %w", err)
	}
	var d audit.Digest
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return audit.Digest{}, fmt.Errorf("decode the last digest: %w", err)
	}
	return d, nil
}

// Digests implements audit.DigestStore.
func (l *AuditLog) Digests(ctx context.Context) ([]audit.Digest, error) {
	rows, err := l.db.r.QueryContext(ctx, `SELECT digest FROM audit_digests ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("read digests: %w", err)
	}
	defer rows.Close()
	var out []audit.Digest
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("read digests: %w", err)
		}
		var d audit.Digest
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			return nil, fmt.Errorf("decode digest: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

var _ audit.Querier = (*AuditLog)(nil)

// Query implements audit.Querier. The indexed columns narrow the scan;
// the rest of the filter runs on the decoded records.
//
// A session's records are scattered over the table, among those of every
// session that ran at the same time, so each costs a page read of its own.
// Query by session therefore reads the session's seqs from its index
// first, where they are together, and then fetches the records in chunks
// on up to three read connections at once (a fourth is left for the
// identity reads of requests): the page reads overlap, which counts when
// they come from the disk, and so does decoding, on the cores there are.
func (l *AuditLog) Query(ctx context.Context, f audit.Filter, after int64, limit int) ([]audit.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	var since, until string // as stored; a time that cannot be is refused
	for _, c := range []struct {
		at  time.Time
		out *string
	}{{f.Since, &since}, {f.Until, &until}} {
		if !c.at.IsZero() {
			var err error
			if *c.out, err = formatTime(c.at); err != nil {
				return nil, err
			}
		}
	}
	const page = 500 // records read at a time when the filter drops some
	var out []audit.Record
	if f.Session == "" {
		where, args := []string{"seq > ?"}, []any{after}
		for _, c := range []struct{ cond, val string }{{"project = ?", f.Project}, {"agent = ?", f.Agent}, {"code = ?", string(f.Code)}, {"time >= ?", since}, {"time < ?", until}} {
			if c.val != "" {
				where, args = append(where, c.cond), append(args, c.val)
			}
		}
		for len(out) < limit {
			args[0] = after
			recs, err := l.query(ctx, strings.Join(where, " AND "), args, page)
			if err != nil {
				return nil, err
			}
			for i := range recs {
				if f.Match(&recs[i]) && len(out) < limit {
					out = append(out, recs[i])
				}
			}
			if len(recs) < page {
				break
			}
			after = recs[len(recs)-1].Seq
		}
		return out, nil
	}

	// By session. Only the session is in the index ("session <> ''" lets
	// SQLite use it, being partial): the rest of the filter is matched on
	// the decoded records. With nothing else in the filter every record
	// read is kept, and one round reads exactly what is missing.
	sessionOnly := f == audit.Filter{Session: f.Session}
	// seqsAfter reads up to n of the session's seqs after seq after, from
	// the index alone.
	seqsAfter := func(after int64, n int) ([]int64, error) {
		rows, err := l.db.r.QueryContext(ctx, `SELECT seq FROM audit WHERE seq > ? AND session = ? AND session <> '' ORDER BY seq LIMIT ?`, after, f.Session, n)
		if err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
		defer rows.Close()
		seqs := make([]int64, 0, min(n, 1024))
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				return nil, fmt.Errorf("query audit: %w", err)
			}
			seqs = append(seqs, seq)
		}
		return seqs, rows.Err()
	}
	// fetch reads the records of seqs, which follow seq after, in chunks,
	// each a query of its own on the first connection free. If a chunk
	// comes back short, retention deleted records meanwhile, and the
	// chunks may not agree on which: the records are then read again in
	// one query, which sees one state of the trail.
	fetch := func(after int64, seqs []int64) ([]audit.Record, error) {
		const fetchers, most, least = 3, 256, 64 // connections; records a chunk
		n := (len(seqs) + most - 1) / most
		n = (n + fetchers - 1) / fetchers * fetchers // whole rounds of the fetchers
		n = min(n, max(len(seqs)/least, 1))
		size := (len(seqs) + n - 1) / n
		chunks, errs := make([][]audit.Record, n), make([]error, n)
		var next atomic.Int32
		work := func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				lo, hi := i*size, min((i+1)*size, len(seqs))
				chunks[i], errs[i] = l.query(ctx, `seq > ? AND seq <= ? AND session = ? AND session <> ''`, []any{seqs[lo] - 1, seqs[hi-1], f.Session}, hi-lo)
			}
		}
		var wg sync.WaitGroup
		for range min(fetchers, n) - 1 {
			wg.Go(work)
		}
		work()
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		if n == 1 && len(chunks[0]) == len(seqs) {
			return chunks[0], nil
		}
		recs := make([]audit.Record, 0, len(seqs))
		for _, c := range chunks {
			recs = append(recs, c...)
		}
		if len(recs) == len(seqs) {
			return recs, nil
		}
		return l.query(ctx, `seq > ? AND seq <= ? AND session = ? AND session <> ''`, []any{after, seqs[len(seqs)-1], f.Session}, len(seqs))
	}
	for len(out) < limit {
		want := limit - len(out)
		if !sessionOnly {
			want = max(want, page)
		}
		seqs, err := seqsAfter(after, want)
		if err != nil {
			return nil, err
		}
		if len(seqs) == 0 {
			break
		}
		recs, err := fetch(after, seqs)
		if err != nil {
			return nil, err
		}
		if sessionOnly && out == nil {
			out = recs
		} else {
			for i := range recs {
				if f.Match(&recs[i]) && len(out) < limit {
					out = append(out, recs[i])
				}
			}
		}
		if len(seqs) < want {
			break
		}
		after = seqs[len(seqs)-1]
	}
	return out, nil
}

// query reads one page of records by a WHERE clause whose first argument
// is the seq to start after.
func (l *AuditLog) query(ctx context.Context, where string, args []any, limit int) ([]audit.Record, error) {
	rows, err := l.db.r.QueryContext(ctx, `SELECT seq, record, hash FROM audit WHERE `+where+` ORDER BY seq LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		var seq int64
		var data, hash string // a string is the driver's own copy; []byte would copy it again
		if err := rows.Scan(&seq, &data, &hash); err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
		r, err := decodeRow(seq, data, hash)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]audit.Record, 0, min(limit, 256))
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
