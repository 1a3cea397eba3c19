// Package budgettest is the conformance suite of budget.Ledger adapters:
// every adapter runs Run in its tests, so that they all count alike.
package budgettest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/internal/suite"
	"github.com/wardenhq/warden/shared/pricing"
)

// Run checks a Ledger through budget.Service: reserve and settle
// arithmetic, all or nothing across budgets, windows rolling over, alerts
// once per threshold per window, concurrent reserves and settles, token
// and dollar caps. newLedger returns an empty ledger for each subtest.
func Run(t *testing.T, newLedger func(t *testing.T) budget.Ledger) {
	suite.Run(t, newLedger, []suite.Case[budget.Ledger]{
		{Name: "ReserveSettle", Run: testReserveSettle},
		{Name: "CapExactlyReached", Run: testCapExactlyReached},
		{Name: "CallLargerThanLeft", Run: testCallLargerThanLeft},
		{Name: "AllOrNothing", Run: testAllOrNothing},
		{Name: "UsageAboveWorstCase", Run: testUsageAboveWorstCase},
		{Name: "TokensAndDollars", Run: testTokensAndDollars},
		{Name: "WindowsRollOver", Run: testWindowsRollOver},
		{Name: "AlertsOncePerWindow", Run: testAlertsOncePerWindow},
		{Name: "UnsettledHoldStaysCounted", Run: testUnsettledHold},
		{Name: "ConcurrentSettlesAlertOnce", Run: testConcurrentSettles},
		{Name: "ConcurrentReservesNeverOvershoot", Run: testConcurrentReserves},
		{Name: "Port", Run: testPort},
	})
}

// Clock is a settable clock for Service.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Policy loads a policy for a test.
func Policy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Load("budget.yaml", []byte("version: 1\n"+src))
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	return p
}

// USD is an amount of dollars.
func USD(d float64) budget.Amount { return budget.Amount{USD: pricing.USD(d)} }

// Tokens is an amount of tokens.
func Tokens(n int64) budget.Amount { return budget.Amount{Tokens: n} }

var (
	noon  = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	alice = policy.Principal{Project: "proj", Agent: "coder", Session: "s1"}
	ctx   = context.Background()
)

func service(l budget.Ledger, at time.Time) (*budget.Service, *Clock) {
	c := NewClock(at)
	return &budget.Service{Ledger: l, Now: c.Now}, c
}

func reserve(t *testing.T, s *budget.Service, pol *policy.Policy, p policy.Principal, worst budget.Amount) *budget.Hold {
	t.Helper()
	h, err := s.Reserve(ctx, pol, p, worst)
	if err != nil {
		t.Fatalf("Reserve(%s): %v", worst, err)
	}
	return h
}

func settle(t *testing.T, h *budget.Hold, actual budget.Amount) []budget.Alert {
	t.Helper()
	alerts, err := h.Settle(ctx, actual)
	if err != nil {
		t.Fatalf("Settle(%s): %v", actual, err)
	}
	return alerts
}

// refused asserts that Reserve fails with an *Exhausted reading want.
func refused(t *testing.T, s *budget.Service, pol *policy.Policy, p policy.Principal, worst budget.Amount, want string) *budget.Exhausted {
	t.Helper()
	h, err := s.Reserve(ctx, pol, p, worst)
	e, ok := errors.AsType[*budget.Exhausted](err)
	if !ok {
		t.Fatalf("Reserve(%s) = %v, %v; want *Exhausted %q", worst, h, err, want)
	}
	if e.Error() != want {
		t.Errorf("Reserve(%s):\n got %q\nwant %q", worst, e.Error(), want)
	}
	return e
}

// status returns the Spent entry of a budget.
func status(t *testing.T, s *budget.Service, pol *policy.Policy, p policy.Principal, id string) budget.Status {
	t.Helper()
	sts, err := s.Spent(ctx, pol, p)
	if err != nil {
		t.Fatalf("Spent: %v", err)
	}
	for _, st := range sts {
		if st.Budget == id {
			return st
		}
	}
	t.Fatalf("Spent: no budget %s in %+v", id, sts)
	return budget.Status{}
}

func wantCounter(t *testing.T, st budget.Status, spent, held budget.Amount) {
	t.Helper()
	if st.Spent != spent || st.Held != held {
		t.Errorf("budget %s for %s: spent %s, held %s; want spent %s, held %s", st.Budget, st.Key, st.Spent, st.Held, spent, held)
	}
}

func thresholds(alerts []budget.Alert) []int {
	var out []int
	for _, a := range alerts {
		out = append(out, a.Threshold)
	}
	return out
}

func testReserveSettle(t *testing.T, l budget.Ledger) {
	pol := Policy(t, "budgets:\n  - {id: daily, scope: project, period: day, usd: 10}\n")
	s, _ := service(l, noon)
	h := reserve(t, s, pol, alice, USD(3))
	if h.ID() == "" || h.Worst() != USD(3) {
		t.Errorf("hold: ID %q, worst %s", h.ID(), h.Worst())
	}
	st := status(t, s, pol, alice, "daily")
	wantCounter(t, st, budget.Amount{}, USD(3))
	if st.Scope != "project" || st.Key != "proj" || st.Cap != USD(10) || !slices.Equal(st.Alerts, []int{50, 80, 100}) ||
		st.Window.Start != time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC) {
		t.Errorf("status: %+v", st)
	}
	if alerts := settle(t, h, USD(1.25)); alerts != nil {
		t.Errorf("alerts at 12.5%%: %v", alerts)
	}
	wantCounter(t, status(t, s, pol, alice, "daily"), USD(1.25), budget.Amount{})

	_, err := h.Settle(ctx, USD(1))
	if want := "settle budget hold " + h.ID() + ": settled already"; err == nil || err.Error() != want {
		t.Errorf("second Settle: %v, want %q", err, want)
	}
	if _, err := l.Settle(ctx, h.ID(), USD(1)); !errors.Is(err, budget.ErrUnknownHold) {
		t.Errorf("ledger Settle of a settled hold: %v, want ErrUnknownHold", err)
	}
	wantCounter(t, status(t, s, pol, alice, "daily"), USD(1.25), budget.Amount{})
}

func testCapExactlyReached(t *testing.T, l budget.Ledger) {
	pol := Policy(t, "budgets:\n  - {id: daily, scope: project, period: day, usd: 10}\n")
	s, _ := service(l, noon)
	settle(t, reserve(t, s, pol, alice, USD(4)), USD(4))
	h := reserve(t, s, pol, alice, USD(6)) // exactly what is left
	e := refused(t, s, pol, alice, USD(0.01),
		"budget daily exhausted for project proj: $10.00 of $10.00 today ($6.00 of it held for calls in flight)")
	want := budget.Exhausted{
		Budget: "daily", Scope: "project", Key: "proj",
		Window: budget.Window{Period: "day", Start: time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)},
		Spent:  USD(4), Held: USD(6), Cap: USD(10), Worst: USD(0.01), At: noon,
	}
	if fmt.Sprint(*e) != fmt.Sprint(want) {
		t.Errorf("Exhausted:\n got %+v\nwant %+v", *e, want)
	}
	if e.RetryAt() != want.Window.End {
		t.Errorf("RetryAt %v, want %v", e.RetryAt(), want.Window.End)
	}
	settle(t, h, USD(6))
	// Used up: even a call that may cost nothing in dollars is refused.
	refused(t, s, pol, alice, budget.Amount{}, "budget daily exhausted for project proj: $10.00 of $10.00 today")
	wantCounter(t, status(t, s, pol, alice, "daily"), USD(10), budget.Amount{})
}

func testCallLargerThanLeft(t *testing.T, l budget.Ledger) {
	pol := Policy(t, "budgets:\n  - {id: daily, scope: agent, period: day, usd: 10}\n")
	s, _ := service(l, noon)
	settle(t, reserve(t, s, pol, alice, USD(10)), USD(9.9))
	refused(t, s, pol, alice, USD(0.3),
		"budget daily exhausted for agent proj/coder: $9.90 of $10.00 today, and this call may cost up to $0.30")
	settle(t, reserve(t, s, pol, alice, USD(0.1)), USD(0.1))
	// Another agent of the project has its own counter.
	bob := policy.Principal{Project: "proj", Agent: "reviewer", Session: "s2"}
	settle(t, reserve(t, s, pol, bob, USD(10)), USD(1))
	wantCounter(t, status(t, s, pol, alice, "daily"), USD(10), budget.Amount{})
	wantCounter(t, status(t, s, pol, bob, "daily"), USD(1), budget.Amount{})
}

func testAllOrNothing(t *testing.T, l budget.Ledger) {
	pol := Policy(t, `budgets:
  - {id: proj-day, scope: project, period: day, usd: 10}
  - {id: sess-hour, scope: session, period: hour, usd: 1}
  - {id: other, scope: project, period: day, usd: 1, who: {project: elsewhere}}
`)
	s, _ := service(l, noon)
	reserve(t, s, pol, alice, USD(0.6))
	refused(t, s, pol, alice, USD(0.6),
		"budget sess-hour exhausted for session s1: $0.60 of $1.00 this hour ($0.60 of it held for calls in flight), and this call may cost up to $0.60")
	// The refused call held nothing on the project budget either.
	wantCounter(t, status(t, s, pol, alice, "proj-day"), budget.Amount{}, USD(0.6))
	wantCounter(t, status(t, s, pol, alice, "sess-hour"), budget.Amount{}, USD(0.6))
	// Another session of the project still fits, and counts on the project.
	s2 := policy.Principal{Project: "proj", Agent: "coder", Session: "s2"}
	reserve(t, s, pol, s2, USD(0.6))
	wantCounter(t, status(t, s, pol, alice, "proj-day"), budget.Amount{}, USD(1.2))
	sts, err := s.Spent(ctx, pol, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 {
		t.Errorf("Spent lists %d budgets, want the 2 that apply", len(sts))
	}
	// Now the project budget refuses, before the session one is reached.
	s3 := policy.Principal{Project: "proj", Agent: "coder", Session: "s3"}
	settle(t, reserve(t, s, pol, s3, USD(1)), USD(1))
	for _, sess := range []string{"s4", "s5", "s6", "s7", "s8", "s9", "s10"} {
		settle(t, reserve(t, s, pol, policy.Principal{Project: "proj", Session: sess}, USD(1)), USD(1))
	}
	refused(t, s, pol, policy.Principal{Project: "proj", Session: "s11"}, USD(1),
		"budget proj-day exhausted for project proj: $9.20 of $10.00 today ($1.20 of it held for calls in flight), and this call may cost up to $1.00")
	wantCounter(t, status(t, s, pol, policy.Principal{Project: "proj", Session: "s11"}, "sess-hour"), budget.Amount{}, budget.Amount{})
}

func testUsageAboveWorstCase(t *testing.T, l budget.Ledger) {
	pol := Policy(t, "budgets:\n  - {id: tok, scope: session, period: day, tokens: 1000000}\n")
	s, _ := service(l, noon)
	h := reserve(t, s, pol, alice, Tokens(100))
	alerts := settle(t, h, Tokens(1_200_000)) // the provider reported more than max_tokens allowed
	if got := thresholds(alerts); !slices.Equal(got, []int{50, 80, 100}) {
		t.Errorf("alerts %v, want [50 80 100]", got)
	}
	if want := "budget tok for session s1 reached 100%: 1,200,000 of 1,000,000 tokens today"; len(alerts) == 3 && alerts[2].String() != want {
		t.Errorf("alert:\n got %q\nwant %q", alerts[2].String(), want)
	}
	wantCounter(t, status(t, s, pol, alice, "tok"), Tokens(1_200_000), budget.Amount{})
	refused(t, s, pol, alice, Tokens(1), "budget tok exhausted for session s1: 1,200,000 of 1,000,000 tokens today")
}

func testTokensAndDollars(t *testing.T, l budget.Ledger) {
	pol := Policy(t, "budgets:\n  - {id: both, scope: project, period: month, usd: 1, tokens: 1000}\n")
	s, _ := service(l, noon)
	e := refused(t, s, pol, alice, budget.Amount{USD: pricing.USD(0.1), Tokens: 2000},
		"budget both exhausted for project proj: 0 of 1,000 tokens this month, and this call may cost up to 2,000 tokens")
	if !e.Tokens {
		t.Error("Exhausted.Tokens is false for a token refusal")
	}
	e = refused(t, s, pol, alice, budget.Amount{USD: pricing.USD(2), Tokens: 10},
		"budget both exhausted for project proj: $0.00 of $1.00 this month, and this call may cost up to $2.00")
	if e.Tokens {
		t.Error("Exhausted.Tokens is true for a dollar refusal")
	}
	h := reserve(t, s, pol, alice, budget.Amount{USD: pricing.USD(0.5), Tokens: 1000})
	alerts := settle(t, h, budget.Amount{USD: pricing.USD(0.1), Tokens: 600})
	if got := thresholds(alerts); !slices.Equal(got, []int{50}) {
		t.Errorf("alerts %v, want [50] (tokens at 60%%, dollars at 10%%)", got)
	}
	if want := "budget both for project proj reached 50%: 600 of 1,000 tokens this month"; len(alerts) == 1 && alerts[0].String() != want {
		t.Errorf("alert:\n got %q\nwant %q", alerts[0].String(), want)
	}
	wantCounter(t, status(t, s, pol, alice, "both"), budget.Amount{USD: pricing.USD(0.1), Tokens: 600}, budget.Amount{})
}

func testWindowsRollOver(t *testing.T, l budget.Ledger) {
	for _, tc := range []struct {
		period       string
		last, next   time.Time
		phrase, past string
	}{
		{"hour", time.Date(2026, 3, 14, 10, 59, 59, 999, time.UTC), time.Date(2026, 3, 14, 11, 0, 0, 0, time.UTC),
			"this hour", "in the hour from 2026-03-14 10:00 UTC"},
		{"day", time.Date(2026, 3, 14, 23, 59, 59, 0, time.UTC), time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC),
			"today", "on 2026-03-14"},
		{"month", time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
			"this month", "in February 2026"},
	} {
		id := "per-" + tc.period
		pol := Policy(t, "budgets:\n  - {id: "+id+", scope: session, period: "+tc.period+", usd: 1}\n")
		p := policy.Principal{Project: "proj", Session: "roll"}
		s, clock := service(l, tc.last)
		h := reserve(t, s, pol, p, USD(1))
		e, _ := errors.AsType[*budget.Exhausted](func() error { _, err := s.Reserve(ctx, pol, p, USD(0.5)); return err }())
		if e == nil || e.Budget != id || e.Window.Phrase(tc.last) != tc.phrase || e.RetryAt() != tc.next {
			t.Errorf("%s: at the end of the window: %v", id, e)
			continue
		}
		clock.Set(tc.next)
		h2 := reserve(t, s, pol, p, USD(0.5)) // the new window
		// The first hold, settled in the new window, is charged to its own.
		alerts := settle(t, h, USD(0.5))
		if len(alerts) != 1 || alerts[0].String() != "budget "+id+" for session roll reached 50%: $0.50 of $1.00 "+tc.past {
			t.Errorf("%s: alerts of the settlement in the next window: %v", id, alerts)
		}
		wantCounter(t, status(t, s, pol, p, id), budget.Amount{}, USD(0.5))
		old, err := l.Counters(ctx, []budget.CounterKey{{Budget: id, Scope: p.Session, Period: tc.period, Window: e.Window.Start}})
		if err != nil {
			t.Fatal(err)
		}
		if old[0].Spent != USD(0.5) || old[0].Held != (budget.Amount{}) || !slices.Equal(old[0].Alerted, []int{50}) {
			t.Errorf("%s: the past window's counter: %+v", id, old[0])
		}
		settle(t, h2, USD(0.5))
	}
}

func testAlertsOncePerWindow(t *testing.T, l budget.Ledger) {
	pol := Policy(t, `budgets:
  - {id: daily, scope: project, period: day, usd: 10, alerts: [50, 80, 100], notify: [ops]}
notifications:
  ops: {type: webhook, url: "https://hooks.example.com/warden"}
`)
	s, clock := service(l, noon)
	for _, step := range []struct {
		spend float64
		want  []int
	}{
		{4, nil}, {1, []int{50}}, {0, nil}, {0.5, nil}, {3, []int{80}}, {1.5, []int{100}},
	} {
		alerts := settle(t, reserve(t, s, pol, alice, USD(step.spend)), USD(step.spend))
		if got := thresholds(alerts); !slices.Equal(got, step.want) {
			t.Errorf("spending %v: alerts %v, want %v", step.spend, got, step.want)
		}
		if len(alerts) == 1 && step.want[0] == 50 {
			a := alerts[0]
			if a.Budget != "daily" || a.Scope != "project" || a.Key != "proj" || a.Spent != USD(5) || a.Cap != USD(10) ||
				!slices.Equal(a.Notify, []string{"ops"}) || a.At != noon || a.Window.Period != "day" {
				t.Errorf("alert: %+v", a)
			}
			if want := "budget daily for project proj reached 50%: $5.00 of $10.00 today"; a.String() != want {
				t.Errorf("alert:\n got %q\nwant %q", a.String(), want)
			}
		}
	}
	st := status(t, s, pol, alice, "daily")
	if !slices.Equal(st.Alerted, []int{50, 80, 100}) {
		t.Errorf("alerted %v", st.Alerted)
	}
	// Another Service on the same ledger (a restart) does not repeat them;
	// the counter remembers, not the process.
	s2, _ := service(l, noon.Add(time.Hour))
	pol2 := Policy(t, `budgets:
  - {id: daily, scope: project, period: day, usd: 20, notify: [ops]}
notifications:
  ops: {type: webhook, url: "https://hooks.example.com/warden"}
`)
	if got := thresholds(settle(t, reserve(t, s2, pol2, alice, USD(1)), USD(1))); got != nil {
		t.Errorf("after a restart, with the cap raised to $20 (55%%): alerts %v, want none", got)
	}
	// The next day starts over.
	clock.Set(noon.AddDate(0, 0, 1))
	if got := thresholds(settle(t, reserve(t, s, pol, alice, USD(8)), USD(8))); !slices.Equal(got, []int{50, 80}) {
		t.Errorf("next day: alerts %v, want [50 80]", got)
	}
}

func testUnsettledHold(t *testing.T, l budget.Ledger) {
	pol := Policy(t, "budgets:\n  - {id: daily, scope: session, period: day, usd: 5}\n")
	s, _ := service(l, noon)
	reserve(t, s, pol, alice, USD(5)) // the process dies mid-call
	s2, clock := service(l, noon.Add(time.Minute))
	refused(t, s2, pol, alice, USD(0.01),
		"budget daily exhausted for session s1: $5.00 of $5.00 today ($5.00 of it held for calls in flight)")
	wantCounter(t, status(t, s2, pol, alice, "daily"), budget.Amount{}, USD(5))
	clock.Set(noon.AddDate(0, 0, 1))
	settle(t, reserve(t, s2, pol, alice, USD(5)), USD(1))
}

func testConcurrentSettles(t *testing.T, l budget.Ledger) {
	pol := Policy(t, "budgets:\n  - {id: daily, scope: project, period: day, usd: 100}\n")
	s, _ := service(l, noon)
	holds := make([]*budget.Hold, 100)
	for i := range holds {
		holds[i] = reserve(t, s, pol, alice, USD(1))
	}
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for _, h := range holds {
		wg.Go(func() {
			alerts, err := h.Settle(ctx, USD(1))
			if err != nil {
				t.Errorf("Settle: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, a := range alerts {
				got[a.Threshold]++
			}
		})
	}
	wg.Wait()
	if fmt.Sprint(got) != "map[50:1 80:1 100:1]" {
		t.Errorf("alerts by threshold %v, want each once", got)
	}
	wantCounter(t, status(t, s, pol, alice, "daily"), USD(100), budget.Amount{})
}

// testConcurrentReserves races 200 calls against a budget that fits 50.
func testConcurrentReserves(t *testing.T, l budget.Ledger) {
	pol := Policy(t, `budgets:
  - {id: daily, scope: project, period: day, usd: 50}
  - {id: tokens, scope: project, period: day, tokens: 10000000}
`)
	s, _ := service(l, noon)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		holds    []*budget.Hold
		refusals atomic.Int64
	)
	for i := range 200 {
		wg.Go(func() {
			p := policy.Principal{Project: "proj", Session: fmt.Sprint("s", i)}
			h, err := s.Reserve(ctx, pol, p, budget.Amount{USD: pricing.USD(1), Tokens: 1000})
			if _, ok := errors.AsType[*budget.Exhausted](err); ok {
				refusals.Add(1)
				return
			}
			if err != nil {
				t.Errorf("Reserve: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			holds = append(holds, h)
		})
	}
	wg.Wait()
	if len(holds) != 50 || refusals.Load() != 150 {
		t.Fatalf("%d reserved, %d refused; want 50 and 150", len(holds), refusals.Load())
	}
	// A counter counts both units, whichever its budget caps.
	st := status(t, s, pol, alice, "daily")
	wantCounter(t, st, budget.Amount{}, budget.Amount{USD: pricing.USD(50), Tokens: 50_000})
	// Settle concurrently, some for less than the worst case; reserve more
	// meanwhile, and the spend still never crosses the cap.
	for i, h := range holds {
		wg.Go(func() {
			if _, err := h.Settle(ctx, budget.Amount{USD: pricing.USD(1) - pricing.Money(i%3)*pricing.USD(0.25), Tokens: 900}); err != nil {
				t.Errorf("Settle: %v", err)
			}
		})
		wg.Go(func() {
			h, err := s.Reserve(ctx, pol, alice, USD(1))
			if err == nil {
				_, err = h.Settle(ctx, USD(1))
			}
			if _, ok := errors.AsType[*budget.Exhausted](err); err != nil && !ok {
				t.Errorf("Reserve while settling: %v", err)
			}
		})
	}
	wg.Wait()
	st = status(t, s, pol, alice, "daily")
	if st.Held != (budget.Amount{}) || st.Spent.USD > st.Cap.USD {
		t.Errorf("after settling: spent %s, held %s of %s", st.Spent, st.Held, st.Cap)
	}
}

func testPort(t *testing.T, l budget.Ledger) {
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	k1 := budget.CounterKey{Budget: "a", Scope: "proj", Period: "day", Window: day}
	k2 := budget.CounterKey{Budget: "b", Scope: "proj", Period: "day", Window: day}
	k1hour := budget.CounterKey{Budget: "a", Scope: "proj", Period: "hour", Window: day}
	cs, err := l.Counters(ctx, []budget.CounterKey{k1, k2})
	if err != nil || len(cs) != 2 || cs[0].Spent != (budget.Amount{}) || cs[0].Held != (budget.Amount{}) || len(cs[0].Alerted) != 0 {
		t.Fatalf("Counters of an empty ledger: %+v, %v", cs, err)
	}
	r := budget.Reservation{ID: "r1", Worst: USD(2), Created: day, Charges: []budget.Charge{
		{Key: k1, Cap: USD(10), Alerts: []int{50}},
		{Key: k2, Cap: USD(3), Alerts: []int{50}},
	}}
	if err := l.Reserve(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := l.Reserve(ctx, r); err == nil {
		t.Error("Reserve accepted a reservation ID twice")
	}
	r2 := r
	r2.ID = "r2"
	err = l.Reserve(ctx, r2)
	ce, ok := errors.AsType[*budget.CapError](err)
	if !ok || ce.Charge != 1 || ce.Counter.Held != USD(2) || ce.Counter.Spent != (budget.Amount{}) {
		t.Fatalf("Reserve over the second cap: %v, want a *CapError for charge 1", err)
	}
	// A window in another location names the same counter.
	berlin := time.FixedZone("CET", 3600)
	cs, err = l.Counters(ctx, []budget.CounterKey{{Budget: "a", Scope: "proj", Period: "day", Window: day.In(berlin)}, k2, k1hour})
	if err != nil || cs[0].Held != USD(2) || cs[1].Held != USD(2) || cs[2].Held != (budget.Amount{}) {
		t.Fatalf("Counters after one reservation: %+v, %v (the refused one held nothing; another period is another counter)", cs, err)
	}
	res, err := l.Settle(ctx, "r1", USD(1.5))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Counter.Spent != USD(1.5) || len(res[0].Alerts) != 0 ||
		res[1].Counter.Spent != USD(1.5) || !slices.Equal(res[1].Alerts, []int{50}) || !slices.Equal(res[1].Counter.Alerted, []int{50}) {
		t.Errorf("Settle: %+v", res)
	}
	if _, err := l.Settle(ctx, "r1", USD(1)); !errors.Is(err, budget.ErrUnknownHold) {
		t.Errorf("Settle twice: %v, want ErrUnknownHold", err)
	}
	if _, err := l.Settle(ctx, "never", USD(1)); !errors.Is(err, budget.ErrUnknownHold) {
		t.Errorf("Settle of an unknown hold: %v, want ErrUnknownHold", err)
	}
}
