package budget

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// Ledger is the storage port of budgets: counters and the reservations
// (holds) drawn on them. Every method is one atomic step; an adapter must
// be safe for concurrent use, also by several processes sharing one store.
//
// A counter is one budget's usage for one scope value in one window, named
// by a CounterKey. It holds what was spent (settled), what is held by open
// reservations at their worst case, and the alert thresholds already
// reported. A reservation is stored as one record until it is settled.
//
// The port is shaped for a store with conditional atomic updates per item,
// such as DynamoDB: one counter item per CounterKey (partition key
// CounterKey.String) with numeric attributes, one item per reservation.
// Reserve is then a TransactWriteItems of a conditional update per counter
// (held += worst, on the condition that spent + held stays within the cap
// less the worst case, which the adapter computes from the Charge, since
// condition expressions cannot add) and a Put of the reservation; Settle a
// TransactWriteItems that marks the reservation settled, on condition that
// it was open, and an update per counter, followed by a conditional ADD of
// each newly reached threshold to the counter's alerted set (the condition
// "not yet in the set" makes each alert fire once). See Charge.Admits and
// Charge.Settle for the arithmetic, which every adapter shares.
type Ledger interface {
	// Reserve stores r and adds r.Worst to the held amount of each of its
	// charges' counters, all or nothing: if any charge does not admit
	// r.Worst (Charge.Admits), nothing changes and the error is a
	// *CapError for the first such charge. A counter that does not exist
	// yet starts at zero. An existing reservation ID is an error.
	Reserve(ctx context.Context, r Reservation) error
	// Settle removes the reservation with the given ID and, in the same
	// atomic step, applies Charge.Settle to each of its counters: the
	// reservation's worst case leaves held and actual joins spent, and the
	// thresholds that spent has reached and that were not reported before
	// are marked and returned. The result has one entry per charge, in the
	// reservation's order. A reservation that does not exist (never made,
	// or settled already) is ErrUnknownHold.
	Settle(ctx context.Context, id string, actual Amount) ([]Settled, error)
	// Counters returns the counters of the keys, in order; a counter that
	// does not exist is the zero Counter.
	Counters(ctx context.Context, keys []CounterKey) ([]Counter, error)
}

// ErrUnknownHold is returned by Ledger.Settle for a reservation it does not
// hold.
var ErrUnknownHold = errors.New("no such budget hold: settled already, or never reserved")

// CounterKey names a counter: one budget, one scope value, one window.
type CounterKey struct {
	// Budget is the budget's ID.
	Budget string
	// Scope is the scope value: a project name, "project/agent", or a
	// session ID.
	Scope string
	// Period is the window's period, hour, day or month: a budget whose
	// period an edit of the policy changed starts new counters.
	Period string
	// Window is the start of the window, in UTC.
	Window time.Time
}

// String is the key as one string: budget#scope#period#window.
func (k CounterKey) String() string {
	return k.Budget + "#" + k.Scope + "#" + k.Period + "#" + k.Window.UTC().Format(time.RFC3339)
}

// Counter is the state of one counter.
type Counter struct {
	// Spent is the settled usage.
	Spent Amount
	// Held is the sum of the worst cases of the open reservations.
	Held Amount
	// Alerted lists the thresholds (percent) already reported, ascending.
	Alerted []int
}

// Used is what the counter counts against its cap: spent and held.
func (c Counter) Used() Amount { return c.Spent.Add(c.Held) }

// Charge is one counter a reservation draws on, with the cap the counter
// must stay within and the alert thresholds.
type Charge struct {
	Key CounterKey
	// Cap is the budget per window; a zero unit is not capped.
	Cap Amount
	// Alerts are percentages of Cap, ascending, from 1 to 100.
	Alerts []int
}

// Reservation is a hold as a Ledger stores it.
type Reservation struct {
	ID string
	// Worst is the most the call may cost, held on every charge.
	Worst   Amount
	Charges []Charge
	// Created is when the hold was made.
	Created time.Time
}

// Settled is the outcome of a settlement for one charge.
type Settled struct {
	// Counter is the counter after the settlement.
	Counter Counter
	// Alerts are the thresholds this settlement reported first.
	Alerts []int
}

// CapError is the error of Ledger.Reserve when a charge does not admit the
// reservation.
type CapError struct {
	// Charge is the index of the charge in Reservation.Charges.
	Charge int
	// Counter is the counter as it stood.
	Counter Counter
}

func (e *CapError) Error() string {
	return fmt.Sprintf("charge %d would cross its cap (spent %s, held %s)", e.Charge, e.Counter.Spent, e.Counter.Held)
}

// Admits reports whether the counter c can hold worst more: in each capped
// unit, spent and held stay below the cap before, and within it after.
// A counter at or over its cap admits nothing, not even a call that may
// cost nothing in that unit.
func (ch Charge) Admits(c Counter, worst Amount) bool {
	used := c.Used()
	if ch.Cap.USD > 0 && (used.USD >= ch.Cap.USD || worst.USD > ch.Cap.USD-used.USD) {
		return false
	}
	if ch.Cap.Tokens > 0 && (used.Tokens >= ch.Cap.Tokens || worst.Tokens > ch.Cap.Tokens-used.Tokens) {
		return false
	}
	return true
}

// Settle is the settlement of a reservation of worst, which cost actual,
// on the counter c: worst leaves held, actual joins spent, and every
// threshold that spent has reached (in any capped unit) and that c has not
// reported is marked and returned.
func (ch Charge) Settle(c Counter, worst, actual Amount) Settled {
	after := Counter{Spent: c.Spent.Add(actual), Held: c.Held.Sub(worst), Alerted: slices.Clone(c.Alerted)}
	var fresh []int
	for _, t := range ch.Alerts {
		if ch.reached(after.Spent, t) && !slices.Contains(after.Alerted, t) {
			fresh = append(fresh, t)
			after.Alerted = append(after.Alerted, t)
		}
	}
	slices.Sort(after.Alerted)
	return Settled{Counter: after, Alerts: fresh}
}

// reached reports whether spent is at least pct percent of the cap in a
// capped unit.
func (ch Charge) reached(spent Amount, pct int) bool {
	return ch.Cap.USD > 0 && atLeastPercent(int64(spent.USD), int64(ch.Cap.USD), pct) ||
		ch.Cap.Tokens > 0 && atLeastPercent(spent.Tokens, ch.Cap.Tokens, pct)
}

// atLeastPercent reports whether v >= limit*pct/100, exactly (in 128 bits)
// for non-negative limit and pct.
func atLeastPercent(v, limit int64, pct int) bool {
	if v < 0 {
		return false
	}
	vh, vl := bits.Mul64(uint64(v), 100)
	lh, ll := bits.Mul64(uint64(limit), uint64(pct))
	return vh > lh || vh == lh && vl >= ll
}
