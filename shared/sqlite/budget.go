package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/pricing"
)

// BudgetLedger is the budget.Ledger of the database: a row per counter
// (budget_counters, keyed by budget ID, scope value, period and window
// start) and a row per open hold (budget_holds). Reserve and Settle each
// run in one write transaction, counters and hold together; the single
// writer connection serializes them, so the check against the cap and the
// update cannot interleave with another call's.
//
// Those transactions are not fsynced on their own (inUnsyncedTx): the
// pipeline follows every reservation with the write-ahead audit record of
// its call, and the gateway every settlement with the call's usage record,
// and the fsync of that record's commit makes the ledger's change, written
// to the WAL before it, durable too. So a model call costs two fsyncs, not
// four. A crash in between loses the reservation of a call that never ran
// (its decision was not recorded either), or a settlement, whose hold then
// stays at its worst case: the budget errs on the safe side.
type BudgetLedger struct {
	db *DB
}

var _ budget.Ledger = (*BudgetLedger)(nil)

// Budgets returns the budget ledger.
func (db *DB) Budgets() *BudgetLedger { return &BudgetLedger{db: db} }

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

// Reserve implements budget.Ledger.
func (l *BudgetLedger) Reserve(ctx context.Context, r budget.Reservation) error {
	created, err := formatTime(r.Created)
	if err != nil {
		return fmt.Errorf("store hold %s: %w", r.ID, err)
	}
	stored := make([]storedCharge, len(r.Charges))
	for i, ch := range r.Charges {
		w, err := formatTime(ch.Key.Window)
		if err != nil {
			return fmt.Errorf("store hold %s: counter %s: %w", r.ID, ch.Key, err)
		}
		stored[i] = storedCharge{
			Budget: ch.Key.Budget, Scope: ch.Key.Scope, Period: ch.Key.Period, Window: w,
			CapUSD: int64(ch.Cap.USD), CapTokens: ch.Cap.Tokens, Alerts: ch.Alerts,
		}
	}
	charges, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("store hold %s: %w", r.ID, err)
	}
	err = l.db.inUnsyncedTx(ctx, func(ctx context.Context, c *sql.Conn) error {
		for i, ch := range r.Charges {
			cur, err := readCounter(ctx, c, stored[i])
			if err != nil {
				return fmt.Errorf("read counter %s: %w", ch.Key, err)
			}
			if !ch.Admits(cur, r.Worst) {
				return &budget.CapError{Charge: i, Counter: cur}
			}
		}
		for i, ch := range r.Charges {
			_, err := c.ExecContext(ctx, `INSERT INTO budget_counters
				(budget, scope, period, window_start, spent_usd, spent_tokens, held_usd, held_tokens, alerted)
				VALUES (?, ?, ?, ?, 0, 0, ?, ?, '[]')
				ON CONFLICT (budget, scope, period, window_start) DO UPDATE SET
					held_usd = held_usd + excluded.held_usd,
					held_tokens = held_tokens + excluded.held_tokens`,
				stored[i].Budget, stored[i].Scope, stored[i].Period, stored[i].Window, int64(r.Worst.USD), r.Worst.Tokens)
			if err != nil {
				return fmt.Errorf("hold on counter %s: %w", ch.Key, err)
			}
		}
		res, err := c.ExecContext(ctx, `INSERT INTO budget_holds (id, created_at, worst_usd, worst_tokens, charges)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			r.ID, created, int64(r.Worst.USD), r.Worst.Tokens, string(charges))
		ok, err := inserted(res, err)
		if err != nil {
			return fmt.Errorf("store hold %s: %w", r.ID, err)
		}
		if !ok {
			return fmt.Errorf("store hold %s: a hold with this ID exists already", r.ID)
		}
		return nil
	})
	return err
}

// Settle implements budget.Ledger.
func (l *BudgetLedger) Settle(ctx context.Context, id string, actual budget.Amount) ([]budget.Settled, error) {
	var out []budget.Settled
	err := l.db.inUnsyncedTx(ctx, func(ctx context.Context, c *sql.Conn) error {
		var worst budget.Amount
		var usd int64
		var charges string
		err := c.QueryRowContext(ctx, `SELECT worst_usd, worst_tokens, charges FROM budget_holds WHERE id = ?`, id).
			Scan(&usd, &worst.Tokens, &charges)
		if errors.Is(err, sql.ErrNoRows) {
			return budget.ErrUnknownHold
		}
		if err != nil {
			return fmt.Errorf("read hold %s: %w", id, err)
		}
		worst.USD = pricing.Money(usd)
		var stored []storedCharge
		if err := json.Unmarshal([]byte(charges), &stored); err != nil {
			return fmt.Errorf("read hold %s: charges: %w", id, err)
		}
		if _, err := c.ExecContext(ctx, `DELETE FROM budget_holds WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete hold %s: %w", id, err)
		}
		for _, sc := range stored {
			name := sc.Budget + "#" + sc.Scope + "#" + sc.Period + "#" + sc.Window
			cur, err := readCounter(ctx, c, sc)
			if err != nil {
				return fmt.Errorf("read counter %s: %w", name, err)
			}
			ch := budget.Charge{Cap: budget.Amount{USD: pricing.Money(sc.CapUSD), Tokens: sc.CapTokens}, Alerts: sc.Alerts}
			s := ch.Settle(cur, worst, actual)
			alerted, err := json.Marshal(append([]int{}, s.Counter.Alerted...)) // [] rather than null
			if err != nil {
				return fmt.Errorf("settle counter %s: %w", name, err)
			}
			_, err = c.ExecContext(ctx, `INSERT INTO budget_counters
				(budget, scope, period, window_start, spent_usd, spent_tokens, held_usd, held_tokens, alerted)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (budget, scope, period, window_start) DO UPDATE SET
					spent_usd = excluded.spent_usd, spent_tokens = excluded.spent_tokens,
					held_usd = excluded.held_usd, held_tokens = excluded.held_tokens,
					alerted = excluded.alerted`,
				sc.Budget, sc.Scope, sc.Period, sc.Window, int64(s.Counter.Spent.USD), s.Counter.Spent.Tokens,
				int64(s.Counter.Held.USD), s.Counter.Held.Tokens, string(alerted))
			if err != nil {
				return fmt.Errorf("settle counter %s: %w", name, err)
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Counters implements budget.Ledger.
func (l *BudgetLedger) Counters(ctx context.Context, keys []budget.CounterKey) ([]budget.Counter, error) {
	out := make([]budget.Counter, len(keys))
	for i, k := range keys {
		w, err := formatTime(k.Window)
		if err != nil {
			return nil, fmt.Errorf("read counter %s: %w", k, err)
		}
		if out[i], err = readCounter(ctx, l.db.r, storedCharge{Budget: k.Budget, Scope: k.Scope, Period: k.Period, Window: w}); err != nil {
			return nil, fmt.Errorf("read counter %s: %w", k, err)
		}
	}
	return out, nil
}

// readCounter reads the counter of a charge; a missing one is the zero
// Counter.
func readCounter(ctx context.Context, q queryer, k storedCharge) (budget.Counter, error) {
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
