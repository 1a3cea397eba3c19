package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/pricing"
)

// BudgetLedger is the budget.Ledger of the database: a row per counter
// (budget_counters, keyed by budget ID, scope value, period and window
// start) and a row per open hold (budget_holds).
//
// The server's process owns the ledger: Reserve and Settle work on a copy
// of the counters in memory, under one mutex, so that the check against
// the cap and the update cannot interleave with another call's, and take
// microseconds rather than a transaction each. What they change is written
// to the file with the next audit batch, in the same transaction as its
// records (flush): the pipeline follows every reservation with the
// write-ahead audit record of its call, and the gateway every settlement
// with the call's usage record, so the change is durable when that record
// is, by the same fsync. A crash before it loses the reservation of a call
// that never ran (its decision was not recorded either), or a settlement,
// whose hold then stays at its worst case: the budget errs on the safe
// side. Changes not followed by a record are written within a second by
// the background checkpointer, and by Close. A batch whose ledger write
// fails fails whole, its callers refused, and the changes wait for the
// next one.
//
// A counter is read from the file the first time it is used, and dropped
// from memory once it is written and has no open hold, when there are
// many. One process at a time may use the file: a second server on the
// same database would keep counters of its own.
type BudgetLedger struct {
	db *DB

	mu       sync.Mutex
	closed   bool
	counters map[counterID]*memCounter
	holds    map[string]*memHold
	dirty    map[counterID]*memCounter // changed since they were last taken for writing
	added    map[string]*memHold       // holds not taken for writing yet
	removed  map[string]bool           // settled holds that may be in the file
	writing  int                       // writes taken and not yet ended
}

// memCounter is a counter in memory.
type memCounter struct {
	key   counterID
	c     budget.Counter
	holds int // open holds on it, which keep it in memory
}

// memHold is an open hold in memory.
type memHold struct {
	id       string
	created  string
	worst    budget.Amount
	charges  []storedCharge
	counters []*memCounter
	json     string // charges as budget_holds.charges stores them
}

// maxCleanCounters is how many counters without changes to write or open
// holds stay in memory.
const maxCleanCounters = 4096

var _ budget.Ledger = (*BudgetLedger)(nil)

// errLedgerClosed is the error of a ledger whose database is closed.
var errLedgerClosed = errors.New("the database is closed")

func newBudgetLedger(db *DB) *BudgetLedger {
	return &BudgetLedger{db: db, counters: map[counterID]*memCounter{}, holds: map[string]*memHold{},
		dirty: map[counterID]*memCounter{}, added: map[string]*memHold{}, removed: map[string]bool{}}
}

// Budgets returns the budget ledger.
func (db *DB) Budgets() *BudgetLedger { return db.budgets }

// storedCharge is a budget.Charge as budget_holds.charges holds it.
type storedCharge struct {
	Budget    string `json:"budget"`
	Scope     string `json:"scope"`
	Period    string `json:"period"`
	Window    string `json:"window"`
	CapUSD    int64  `json:"cap_usd"`
	CapTokens int64  `json:"cap_tokens"`
	Alerts    []int  `json:"alerts"`
}

// counterID names a counter as budget_counters keys it.
type counterID struct {
	Budget, Scope, Period, Window string
}

// counterKey is the key of the counter sc draws on.
func counterKey(sc storedCharge) counterID {
	return counterID{Budget: sc.Budget, Scope: sc.Scope, Period: sc.Period, Window: sc.Window}
}

func (k counterID) name() string { return k.Budget + "#" + k.Scope + "#" + k.Period + "#" + k.Window }

// Reserve implements budget.Ledger.
func (l *BudgetLedger) Reserve(ctx context.Context, r budget.Reservation) error {
	created, err := formatTime(r.Created)
	if err != nil {
		return fmt.Errorf("store hold %s: %w", r.ID, err)
	}
	h := &memHold{id: r.ID, created: created, worst: r.Worst, charges: make([]storedCharge, len(r.Charges))}
	for i, ch := range r.Charges {
		w, err := formatTime(ch.Key.Window)
		if err != nil {
			return fmt.Errorf("store hold %s: counter %s: %w", r.ID, ch.Key, err)
		}
		h.charges[i] = storedCharge{
			Budget: ch.Key.Budget, Scope: ch.Key.Scope, Period: ch.Key.Period, Window: w,
			CapUSD: int64(ch.Cap.USD), CapTokens: ch.Cap.Tokens, Alerts: ch.Alerts,
		}
	}
	data, err := json.Marshal(h.charges)
	if err != nil {
		return fmt.Errorf("store hold %s: %w", r.ID, err)
	}
	h.json = string(data)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errLedgerClosed
	}
	if l.holds[r.ID] != nil {
		return fmt.Errorf("store hold %s: a hold with this ID exists already", r.ID)
	}
	h.counters = make([]*memCounter, len(r.Charges))
	for i, ch := range r.Charges {
		mc, err := l.counter(ctx, counterKey(h.charges[i]))
		if err != nil {
			return fmt.Errorf("read counter %s: %w", ch.Key, err)
		}
		if !ch.Admits(mc.c, r.Worst) {
			return &budget.CapError{Charge: i, Counter: mc.c}
		}
		h.counters[i] = mc
	}
	for _, mc := range h.counters {
		mc.c.Held = mc.c.Held.Add(r.Worst)
		mc.holds++
		l.dirty[mc.key] = mc
	}
	l.holds[r.ID], l.added[r.ID] = h, h
	return nil
}

// counter returns the counter of key from memory, reading it from the
// file the first time. The caller holds l.mu.
func (l *BudgetLedger) counter(ctx context.Context, key counterID) (*memCounter, error) {
	if mc := l.counters[key]; mc != nil {
		return mc, nil
	}
	c, err := readCounter(ctx, l.db.r, key)
	if err != nil {
		return nil, err
	}
	mc := &memCounter{key: key, c: c}
	l.counters[key] = mc
	return mc, nil
}

// Settle implements budget.Ledger.
func (l *BudgetLedger) Settle(ctx context.Context, id string, actual budget.Amount) ([]budget.Settled, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errLedgerClosed
	}
	h := l.holds[id]
	if h == nil {
		return nil, budget.ErrUnknownHold
	}
	delete(l.holds, id)
	if l.added[id] != nil {
		delete(l.added, id) // never written: nothing to delete
	} else {
		l.removed[id] = true
	}
	out := make([]budget.Settled, len(h.charges))
	for i, sc := range h.charges {
		mc := h.counters[i]
		ch := budget.Charge{Cap: budget.Amount{USD: pricing.Money(sc.CapUSD), Tokens: sc.CapTokens}, Alerts: sc.Alerts}
		out[i] = ch.Settle(mc.c, h.worst, actual)
		mc.c = out[i].Counter
		mc.holds--
		l.dirty[mc.key] = mc
	}
	return out, nil
}

// ledgerWrite is what one flush writes: the counters as they stood when
// it was taken, the holds to insert and those to delete.
type ledgerWrite struct {
	counters []memCounter
	added    []*memHold
	removed  []string
}

func (w *ledgerWrite) empty() bool {
	return len(w.counters) == 0 && len(w.added) == 0 && len(w.removed) == 0
}

// take hands the changes made since the last take to a write, and drops
// clean counters from memory when there are many.
func (l *BudgetLedger) take() *ledgerWrite {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &ledgerWrite{}
	for k, mc := range l.dirty {
		w.counters = append(w.counters, memCounter{key: k, c: mc.c})
	}
	for _, h := range l.added {
		w.added = append(w.added, h)
	}
	for id := range l.removed {
		w.removed = append(w.removed, id)
	}
	clear(l.dirty)
	clear(l.added)
	clear(l.removed)
	if len(l.counters) > maxCleanCounters && l.writing == 0 {
		// With no other write in flight, a counter that is not in w has
		// its last change in the file.
		in := map[counterID]bool{}
		for _, c := range w.counters {
			in[c.key] = true
		}
		for k, mc := range l.counters {
			if mc.holds == 0 && !in[k] {
				delete(l.counters, k)
			}
		}
	}
	l.writing++
	return w
}

// ended records the end of write w; if it failed, its changes are marked
// as not written.
func (l *BudgetLedger) ended(w *ledgerWrite, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writing--
	if err == nil {
		return
	}
	for _, c := range w.counters {
		if mc := l.counters[c.key]; mc != nil {
			l.dirty[c.key] = mc
		}
	}
	for _, h := range w.added {
		if l.holds[h.id] == h {
			l.added[h.id] = h
		} else {
			l.removed[h.id] = true // settled meanwhile: it may have been written
		}
	}
	for _, id := range w.removed {
		l.removed[id] = true
	}
}

// write writes w in the transaction open on c.
func (w *ledgerWrite) write(ctx context.Context, db *DB, c *sql.Tx) error {
	for _, mc := range w.counters {
		alerted, err := json.Marshal(append([]int{}, mc.c.Alerted...)) // [] rather than null
		if err != nil {
			return fmt.Errorf("write counter %s: %w", mc.key.name(), err)
		}
		_, err = c.StmtContext(ctx, db.stmts.writeCounter).ExecContext(ctx,
			mc.key.Budget, mc.key.Scope, mc.key.Period, mc.key.Window, int64(mc.c.Spent.USD), mc.c.Spent.Tokens,
			int64(mc.c.Held.USD), mc.c.Held.Tokens, string(alerted))
		if err != nil {
			return fmt.Errorf("write counter %s: %w", mc.key.name(), err)
		}
	}
	for _, h := range w.added {
		_, err := c.StmtContext(ctx, db.stmts.insertHold).ExecContext(ctx, h.id, h.created, int64(h.worst.USD), h.worst.Tokens, h.json)
		if err != nil {
			return fmt.Errorf("write hold %s: %w", h.id, err)
		}
	}
	for _, id := range w.removed {
		if _, err := c.StmtContext(ctx, db.stmts.deleteHold).ExecContext(ctx, id); err != nil {
			return fmt.Errorf("delete hold %s: %w", id, err)
		}
	}
	return nil
}

// The ledger's writes.
const (
	writeCounter = `INSERT INTO budget_counters
		(budget, scope, period, window_start, spent_usd, spent_tokens, held_usd, held_tokens, alerted)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (budget, scope, period, window_start) DO UPDATE SET
			spent_usd = excluded.spent_usd, spent_tokens = excluded.spent_tokens,
			held_usd = excluded.held_usd, held_tokens = excluded.held_tokens,
			alerted = excluded.alerted`
	insertHold = `INSERT INTO budget_holds (id, created_at, worst_usd, worst_tokens, charges)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	deleteHold = `DELETE FROM budget_holds WHERE id = ?`
)

// flush writes the ledger's changes in the transaction open on c, and
// returns what to call once it has ended, with its outcome.
func (l *BudgetLedger) flush(ctx context.Context, c *sql.Tx) (func(error), error) {
	w := l.take()
	done := func(err error) { l.ended(w, err) }
	if w.empty() {
		return done, nil
	}
	if err := w.write(ctx, l.db, c); err != nil {
		return done, fmt.Errorf("budget ledger: %w", err)
	}
	return done, nil
}

// pending reports whether there are changes not yet taken for writing.
func (l *BudgetLedger) pending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.dirty) > 0 || len(l.added) > 0 || len(l.removed) > 0
}

// flushNow writes the pending changes in a transaction of their own.
func (l *BudgetLedger) flushNow(ctx context.Context) error {
	var done func(error)
	err := l.db.inTx(ctx, func(ctx context.Context, c *sql.Tx) error {
		var err error
		done, err = l.flush(ctx, c)
		return err
	})
	if done != nil {
		done(err)
	}
	return err
}

// close writes the pending changes and refuses further calls.
func (l *BudgetLedger) close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.flushNow(ctx)
}

// Counters implements budget.Ledger.
func (l *BudgetLedger) Counters(ctx context.Context, keys []budget.CounterKey) ([]budget.Counter, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errLedgerClosed
	}
	out := make([]budget.Counter, len(keys))
	for i, k := range keys {
		w, err := formatTime(k.Window)
		if err != nil {
			return nil, fmt.Errorf("read counter %s: %w", k, err)
		}
		key := counterID{Budget: k.Budget, Scope: k.Scope, Period: k.Period, Window: w}
		if mc := l.counters[key]; mc != nil {
			out[i] = mc.c
			out[i].Alerted = slices.Clone(mc.c.Alerted)
			continue
		}
		if out[i], err = readCounter(ctx, l.db.r, key); err != nil {
			return nil, fmt.Errorf("read counter %s: %w", k, err)
		}
	}
	return out, nil
}

// readCounter reads the counter of a charge; a missing one is the zero
// Counter.
func readCounter(ctx context.Context, q queryer, k counterID) (budget.Counter, error) {
	var c budget.Counter
	var spentUSD, heldUSD int64
	var alerted string
	err := q.QueryRowContext(ctx, `SELECT spent_usd, spent_tokens, held_usd, held_tokens, alerted
		FROM budget_counters WHERE budget = ? AND scope = ? AND period = ? AND window_start = ?`,
		k.Budget, k.Scope, k.Period, k.Window).
		Scan(&spentUSD, &c.Spent.Tokens, &heldUSD, &c.Held.Tokens, &alerted)
	if errors.Is(err, sql.ErrNoRows) {
		return budget.Counter{}, nil
	}
	if err != nil {
		return budget.Counter{}, err
	}
	c.Spent.USD, c.Held.USD = pricing.Money(spentUSD), pricing.Money(heldUSD)
	if err := json.Unmarshal([]byte(alerted), &c.Alerted); err != nil {
		return budget.Counter{}, fmt.Errorf("alerted %q: %w", alerted, err)
	}
	if len(c.Alerted) == 0 {
		c.Alerted = nil
	}
	return c, nil
}
