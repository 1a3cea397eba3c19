// Package budget enforces the policy's budgets (hard caps on dollars and
// tokens per project, agent or session, per UTC hour, day or month, with
// alert thresholds) and its rate limits (requests and tokens per window).
//
// # Budgets: reserve, then settle
//
// A model call's cost is known only after it ran, but a cap must hold
// before. So the LLM gateway, for each call:
//
//	hold, err := svc.Reserve(ctx, pol, principal, worst) // worst: from max_tokens and the price
//	if err != nil { refuse; an *Exhausted says which budget, how far, until when }
//	… make the call …
//	alerts, err := hold.Settle(ctx, actual) // actual: the usage the provider reported
//	… send alerts to Slack, webhooks and the audit trail …
//
// Reserve holds worst against every budget that applies to the principal,
// all or nothing, in one atomic step of the Ledger: concurrent calls cannot
// together cross a cap. It refuses (*Exhausted) when spent plus held plus
// worst would exceed a cap, or when spent plus held already reach it.
// Settle replaces the hold by the real usage, which may be less than the
// worst case, or more, if the provider reports more: the real amount is
// recorded even when it crosses the cap, and later calls are refused.
// A call that never reached the provider is settled with a zero Amount.
//
// A hold that is never settled (the process crashed mid-call) stays
// counted at its worst case until its window ends: the budget fails
// closed, never open. Settle charges the counters of the window the hold
// was reserved in, even when it runs after that window ended. Pass Settle
// a context that outlives the client's request (context.WithoutCancel), so
// that a client hanging up mid-stream still has its usage settled.
//
// A store error refuses the call: Reserve returns it (not an *Exhausted),
// and the caller denies.
//
// Spent reports, for each budget that applies to a principal, the current
// window's spent, held and cap (for `warden budgets`).
//
// # Alerts
//
// Each budget has alert thresholds, percentages of its cap (default 50,
// 80, 100). Settle returns an Alert for each threshold that the spent
// amount (not the held one) reached for the first time in its window. The
// counter records the thresholds reported, in the same atomic step as the
// settlement, so an alert is reported once per threshold per window, also
// across restarts and concurrent settlements. Sending it is the caller's.
//
// # Storage
//
// Ledger is the storage port: MemoryLedger here (tests), the SQLite
// adapter in shared/sqlite (local server). Its doc describes how a
// DynamoDB adapter maps onto it. budgettest.Run is the conformance suite
// every adapter passes.
//
// # Rate limits
//
// Limiter enforces the policy's rate limits in memory: requests per window
// (Allow, before each call) and tokens per window (AddTokens, after).
package budget

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/pricing"
	"github.com/wardenhq/warden/shared/textfmt"
)

// DefaultAlerts are the alert thresholds of a budget that declares none.
var DefaultAlerts = []int{50, 80, 100}

// Service enforces the budgets of a policy on top of a Ledger.
type Service struct {
	// Ledger stores the counters and holds. Required.
	Ledger Ledger
	// Now returns the current time, which picks the windows. Default
	// time.Now.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// charge is a Charge with what the service needs to report on it.
type charge struct {
	Charge
	scope  string // project, agent or session
	window Window
	notify []string
}

// charges lists the counters of the budgets that apply to p, in the
// policy's order.
func charges(pol *policy.Policy, p policy.Principal, now time.Time) ([]charge, error) {
	var out []charge
	for i := range pol.Budgets {
		b := &pol.Budgets[i]
		if !b.AppliesTo(p) {
			continue
		}
		key, err := scopeValue(b.Scope, p)
		if err != nil {
			return nil, fmt.Errorf("budget %s: %w", b.ID, err)
		}
		w, err := WindowAt(b.Period, now)
		if err != nil {
			return nil, fmt.Errorf("budget %s: %w", b.ID, err)
		}
		alerts := b.Alerts
		if len(alerts) == 0 {
			alerts = DefaultAlerts
		}
		out = append(out, charge{
			Charge: Charge{
				Key:    CounterKey{Budget: b.ID, Scope: key, Period: b.Period, Window: w.Start},
				Cap:    Amount{USD: pricing.USD(b.USD), Tokens: b.Tokens},
				Alerts: alerts,
			},
			scope: b.Scope, window: w, notify: b.Notify,
		})
	}
	return out, nil
}

// scopeValue is what one counter of the scope covers: the project, the
// agent within its project ("project/agent"), or the session.
func scopeValue(scope string, p policy.Principal) (string, error) {
	switch scope {
	case "project":
		if p.Project != "" {
			return p.Project, nil
		}
	case "agent":
		if p.Project != "" && p.Agent != "" {
			return p.Project + "/" + p.Agent, nil
		}
	case "session":
		if p.Session != "" {
			return p.Session, nil
		}
	default:
		return "", fmt.Errorf("unknown scope %q", scope)
	}
	return "", fmt.Errorf("the principal has no %s to count against", scope)
}

// Hold is a reservation made by Reserve, to be settled once with the real
// usage.
type Hold struct {
	s       *Service
	id      string
	worst   Amount
	charges []charge

	mu      sync.Mutex
	settled bool
}

// ID identifies the hold in the ledger; it is empty when no budget applied.
func (h *Hold) ID() string { return h.id }

// Worst is the amount held.
func (h *Hold) Worst() Amount { return h.worst }

// Reserve holds worst against every budget of pol that applies to p, all
// or nothing. When a cap would be crossed the error is an *Exhausted; any
// other error (a store failure, a principal lacking the scope a budget
// counts by) also refuses the call. With no applicable budget it returns a
// hold whose Settle does nothing.
func (s *Service) Reserve(ctx context.Context, pol *policy.Policy, p policy.Principal, worst Amount) (*Hold, error) {
	if pol == nil {
		return nil, errors.New("reserve budget: no policy")
	}
	if worst.negative() {
		return nil, fmt.Errorf("reserve budget: negative worst case %s", worst)
	}
	now := s.now()
	chs, err := charges(pol, p, now)
	if err != nil {
		return nil, fmt.Errorf("reserve budget: %w", err)
	}
	h := &Hold{s: s, worst: worst, charges: chs}
	if len(chs) == 0 {
		return h, nil
	}
	h.id = rand.Text()
	r := Reservation{ID: h.id, Worst: worst, Created: now, Charges: make([]Charge, len(chs))}
	for i, c := range chs {
		r.Charges[i] = c.Charge
	}
	err = s.Ledger.Reserve(ctx, r)
	if ce, ok := errors.AsType[*CapError](err); ok && ce.Charge >= 0 && ce.Charge < len(chs) {
		return nil, exhausted(chs[ce.Charge], ce.Counter, worst, now)
	}
	if err != nil {
		return nil, fmt.Errorf("reserve budget: %w", err)
	}
	return h, nil
}

// Settle replaces the hold by the real usage, actual, which is recorded
// in full even when it exceeds the worst case, and returns the alert
// thresholds it crossed first. A hold is settled once; a failed Settle
// (a store error) may be retried.
func (h *Hold) Settle(ctx context.Context, actual Amount) ([]Alert, error) {
	if actual.negative() {
		return nil, fmt.Errorf("settle budget hold %s: negative usage %s", h.id, actual)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.settled {
		return nil, fmt.Errorf("settle budget hold %s: settled already", h.id)
	}
	if len(h.charges) == 0 {
		h.settled = true
		return nil, nil
	}
	res, err := h.s.Ledger.Settle(ctx, h.id, actual)
	if errors.Is(err, ErrUnknownHold) {
		h.settled = true
	}
	if err != nil {
		return nil, fmt.Errorf("settle budget hold %s: %w", h.id, err)
	}
	h.settled = true
	if len(res) != len(h.charges) {
		return nil, fmt.Errorf("settle budget hold %s: the ledger settled %d counters, want %d", h.id, len(res), len(h.charges))
	}
	now := h.s.now()
	var alerts []Alert
	for i, c := range h.charges {
		for _, t := range res[i].Alerts {
			alerts = append(alerts, Alert{
				Budget: c.Key.Budget, Scope: c.scope, Key: c.Key.Scope, Window: c.window, Threshold: t,
				Spent: res[i].Counter.Spent, Cap: c.Cap, Notify: c.notify, At: now,
			})
		}
	}
	return alerts, nil
}

// Status is one budget's counter in the current window.
type Status struct {
	// Budget is the budget's ID; Scope is project, agent or session, and
	// Key the scope value the counter covers.
	Budget, Scope, Key string
	Window             Window
	// Spent is settled usage, Held the worst cases of open holds
	// (including holds a crash left unsettled).
	Spent, Held Amount
	// Cap is the budget; a zero unit is not capped.
	Cap Amount
	// Alerts are the budget's thresholds; Alerted those reported in this
	// window.
	Alerts, Alerted []int
}

// Spent returns the current window's counter of every budget of pol that
// applies to p, in the policy's order.
func (s *Service) Spent(ctx context.Context, pol *policy.Policy, p policy.Principal) ([]Status, error) {
	if pol == nil {
		return nil, errors.New("read budgets: no policy")
	}
	chs, err := charges(pol, p, s.now())
	if err != nil {
		return nil, fmt.Errorf("read budgets: %w", err)
	}
	if len(chs) == 0 {
		return nil, nil
	}
	keys := make([]CounterKey, len(chs))
	for i, c := range chs {
		keys[i] = c.Key
	}
	counters, err := s.Ledger.Counters(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read budgets: %w", err)
	}
	if len(counters) != len(keys) {
		return nil, fmt.Errorf("read budgets: the ledger returned %d counters, want %d", len(counters), len(keys))
	}
	out := make([]Status, len(chs))
	for i, c := range chs {
		out[i] = Status{
			Budget: c.Key.Budget, Scope: c.scope, Key: c.Key.Scope, Window: c.window,
			Spent: counters[i].Spent, Held: counters[i].Held, Cap: c.Cap, Alerts: c.Alerts, Alerted: counters[i].Alerted,
		}
	}
	return out, nil
}

// Alert reports that a budget's spending reached one of its thresholds for
// the first time in a window.
type Alert struct {
	// Budget is the budget's ID; Scope is project, agent or session, and
	// Key the scope value.
	Budget, Scope, Key string
	Window             Window
	// Threshold is the percentage of the cap reached.
	Threshold int
	// Spent is the counter's settled usage after the settlement that
	// reached the threshold.
	Spent, Cap Amount
	// Notify names the channels the policy routes the budget's alerts to.
	Notify []string
	// At is when the threshold was reached.
	At time.Time
}

// String reads "budget project-daily-usd for project project-a reached
// 80%: $40.00 of $50.00 today".
func (a Alert) String() string {
	return fmt.Sprintf("budget %s for %s %s reached %d%%: %s %s",
		a.Budget, a.Scope, a.Key, a.Threshold, ofCap(a.Spent, a.Cap, moreTokens(a.Spent, a.Cap)), a.Window.Phrase(a.At))
}

// Exhausted is the error of Reserve when a budget cannot cover the call.
type Exhausted struct {
	// Budget is the budget's ID; Scope is project, agent or session, and
	// Key the scope value.
	Budget, Scope, Key string
	// Window is the current window; the budget starts over at its End.
	Window Window
	// Tokens is true when the token cap, not the dollar cap, refused.
	Tokens bool
	// Spent and Held are the counter's; Cap the budget; Worst what the
	// call asked to hold.
	Spent, Held, Cap, Worst Amount
	// At is when the call was refused.
	At time.Time
}

func exhausted(c charge, cur Counter, worst Amount, now time.Time) *Exhausted {
	used := cur.Used()
	usdOK := c.Cap.USD == 0 || used.USD < c.Cap.USD && worst.USD <= c.Cap.USD-used.USD
	return &Exhausted{
		Budget: c.Key.Budget, Scope: c.scope, Key: c.Key.Scope, Window: c.window, Tokens: usdOK,
		Spent: cur.Spent, Held: cur.Held, Cap: c.Cap, Worst: worst, At: now,
	}
}

// RetryAt is when the budget starts over.
func (e *Exhausted) RetryAt() time.Time { return e.Window.End }

// Error reads "budget project-daily-usd exhausted for project project-a:
// $50.00 of $50.00 today", adding how much of that is held by calls in
// flight and, when the budget is not used up, what the call may cost.
func (e *Exhausted) Error() string {
	used := e.Spent.Add(e.Held)
	msg := fmt.Sprintf("budget %s exhausted for %s %s: %s %s", e.Budget, e.Scope, e.Key, ofCap(used, e.Cap, e.Tokens), e.Window.Phrase(e.At))
	if held := unit(e.Held, e.Tokens); held > 0 {
		msg += fmt.Sprintf(" (%s of it held for calls in flight)", format(held, e.Tokens))
	}
	if unit(used, e.Tokens) < unit(e.Cap, e.Tokens) {
		msg += fmt.Sprintf(", and this call may cost up to %s", format(unit(e.Worst, e.Tokens), e.Tokens))
	}
	return msg
}

// unit is a's dollars (in nano-dollars) or tokens.
func unit(a Amount, tokens bool) int64 {
	if tokens {
		return a.Tokens
	}
	return int64(a.USD)
}

func format(v int64, tokens bool) string {
	if tokens {
		return textfmt.Thousands(v) + " tokens"
	}
	return pricing.Money(v).String()
}

// ofCap formats "$40.00 of $50.00" or "1,200,000 of 1,000,000 tokens".
func ofCap(v, limit Amount, tokens bool) string {
	if tokens {
		return textfmt.Thousands(v.Tokens) + " of " + textfmt.Thousands(limit.Tokens) + " tokens"
	}
	return v.USD.String() + " of " + limit.USD.String()
}

// moreTokens reports whether tokens are the unit to show for v against a
// cap: the only capped one, or the one nearer its cap.
func moreTokens(v, limit Amount) bool {
	switch {
	case limit.Tokens == 0:
		return false
	case limit.USD == 0:
		return true
	}
	return float64(v.Tokens)/float64(limit.Tokens) > v.USD.Dollars()/limit.USD.Dollars()
}
