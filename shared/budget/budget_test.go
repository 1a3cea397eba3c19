package budget_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/budget/budgettest"
	"github.com/wardenhq/warden/shared/pricing"
)

func TestMemoryLedger(t *testing.T) {
	t.Parallel()
	budgettest.Run(t, func(*testing.T) budget.Ledger { return budget.NewMemoryLedger() })
}

func TestZeroMemoryLedger(t *testing.T) {
	t.Parallel()
	budgettest.Run(t, func(*testing.T) budget.Ledger { return &budget.MemoryLedger{} })
}

// brokenLedger fails every call, as a store that cannot be reached.
type brokenLedger struct{}

var errDown = errors.New("disk I/O error")

func (brokenLedger) Reserve(context.Context, budget.Reservation) error { return errDown }
func (brokenLedger) Settle(context.Context, string, budget.Amount) ([]budget.Settled, error) {
	return nil, errDown
}
func (brokenLedger) Counters(context.Context, []budget.CounterKey) ([]budget.Counter, error) {
	return nil, errDown
}

// flakyLedger fails Settle once, then works.
type flakyLedger struct {
	*budget.MemoryLedger
	failed bool
}

func (f *flakyLedger) Settle(ctx context.Context, id string, actual budget.Amount) ([]budget.Settled, error) {
	if !f.failed {
		f.failed = true
		return nil, errDown
	}
	return f.MemoryLedger.Settle(ctx, id, actual)
}

var (
	noon  = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	alice = policy.Principal{Project: "proj", Agent: "coder", Session: "s1"}
)

func TestServiceErrors(t *testing.T) {
	t.Parallel()
	pol := budgettest.Policy(t, "budgets:\n  - {id: sess, scope: session, period: day, usd: 10}\n")
	clock := func() time.Time { return noon }
	broken := &budget.Service{Ledger: brokenLedger{}, Now: clock}
	mem := &budget.Service{Ledger: budget.NewMemoryLedger(), Now: clock}
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"store down on reserve", func() error {
			_, err := broken.Reserve(t.Context(), pol, alice, budgettest.USD(1))
			return err
		}, "reserve budget: disk I/O error"},
		{"store down on read", func() error {
			_, err := broken.Spent(t.Context(), pol, alice)
			return err
		}, "read budgets: disk I/O error"},
		{"no policy", func() error {
			_, err := mem.Reserve(t.Context(), nil, alice, budgettest.USD(1))
			return err
		}, "reserve budget: no policy"},
		{"no session to count", func() error {
			_, err := mem.Reserve(t.Context(), pol, policy.Principal{Project: "proj"}, budgettest.USD(1))
			return err
		}, "reserve budget: budget sess: the principal has no session to count against"},
		{"negative worst case", func() error {
			_, err := mem.Reserve(t.Context(), pol, alice, budgettest.USD(-1))
			return err
		}, "reserve budget: negative worst case -$1.00"},
		{"negative usage", func() error {
			h, err := mem.Reserve(t.Context(), pol, alice, budgettest.USD(1))
			if err != nil {
				return err
			}
			_, err = h.Settle(t.Context(), budgettest.Tokens(-5))
			return errors.New(strings.ReplaceAll(err.Error(), h.ID(), "ID"))
		}, "settle budget hold ID: negative usage -5 tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.run()
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if _, ok := errors.AsType[*budget.Exhausted](err); ok {
				t.Errorf("a failure reads as *Exhausted: %v", err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSettleRetriesAfterStoreError(t *testing.T) {
	t.Parallel()
	pol := budgettest.Policy(t, "budgets:\n  - {id: sess, scope: session, period: day, usd: 10}\n")
	l := &flakyLedger{MemoryLedger: budget.NewMemoryLedger()}
	s := &budget.Service{Ledger: l, Now: func() time.Time { return noon }}
	h, err := s.Reserve(t.Context(), pol, alice, budgettest.USD(6))
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Settle(t.Context(), budgettest.USD(5))
	if want := "settle budget hold " + h.ID() + ": disk I/O error"; err == nil || err.Error() != want {
		t.Fatalf("first Settle: %v, want %q", err, want)
	}
	alerts, err := h.Settle(t.Context(), budgettest.USD(5))
	if err != nil || len(alerts) != 1 || alerts[0].Threshold != 50 {
		t.Fatalf("retried Settle: %v, %v", alerts, err)
	}
}

func TestNoBudgetApplies(t *testing.T) {
	t.Parallel()
	pol := budgettest.Policy(t, "budgets:\n  - {id: other, scope: project, period: day, usd: 1, who: {project: other}}\n")
	s := &budget.Service{Ledger: brokenLedger{}} // never called
	h, err := s.Reserve(t.Context(), pol, alice, budgettest.USD(100))
	if err != nil || h.ID() != "" {
		t.Fatalf("Reserve: %v, %v", h, err)
	}
	if alerts, err := h.Settle(t.Context(), budgettest.USD(100)); alerts != nil || err != nil {
		t.Errorf("Settle: %v, %v", alerts, err)
	}
	if sts, err := s.Spent(t.Context(), pol, alice); sts != nil || err != nil {
		t.Errorf("Spent: %v, %v", sts, err)
	}
}

func TestWindowAt(t *testing.T) {
	t.Parallel()
	ny := time.FixedZone("EST", -5*3600)
	for _, tc := range []struct {
		period     string
		at         time.Time
		start, end string
	}{
		{"hour", time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC), "2026-03-14T09:00:00Z", "2026-03-14T10:00:00Z"},
		{"day", time.Date(2026, 3, 14, 23, 30, 0, 0, ny), "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z"}, // UTC days
		{"day", time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"month", time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC), "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"month", time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC), "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"month", time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC), "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
	} {
		w, err := budget.WindowAt(tc.period, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Start.Format(time.RFC3339) + " " + w.End.Format(time.RFC3339); got != tc.start+" "+tc.end {
			t.Errorf("%s at %v: %s, want %s %s", tc.period, tc.at, got, tc.start, tc.end)
		}
		if !w.Contains(tc.at) || w.Contains(w.End) {
			t.Errorf("%s at %v: Contains wrong", tc.period, tc.at)
		}
	}
	if _, err := budget.WindowAt("week", noon); err == nil || err.Error() != `unknown budget period "week" (want hour, day or month)` {
		t.Errorf("week: %v", err)
	}
}

func TestAmountString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a    budget.Amount
		want string
	}{
		{budget.Amount{}, "$0.00"},
		{budgettest.USD(0.3), "$0.30"},
		{budgettest.Tokens(1_200_000), "1,200,000 tokens"},
		{budgettest.Tokens(999), "999 tokens"},
		{budget.Amount{USD: pricing.USD(0.01203), Tokens: 1000}, "$0.012030 and 1,000 tokens"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%#v: %q, want %q", tc.a, got, tc.want)
		}
	}
}

func TestChargeArithmetic(t *testing.T) {
	t.Parallel()
	ch := budget.Charge{Cap: budget.Amount{USD: 3, Tokens: 0}, Alerts: []int{33, 34, 100}}
	// 1 nano-dollar of 3 is 33.3%: 33 reached, 34 not, exactly.
	s := ch.Settle(budget.Counter{Held: budget.Amount{USD: 1}}, budget.Amount{USD: 1}, budget.Amount{USD: 1})
	if len(s.Alerts) != 1 || s.Alerts[0] != 33 || s.Counter.Held != (budget.Amount{}) {
		t.Errorf("Settle: %+v", s)
	}
	huge := budget.Charge{Cap: budget.Amount{USD: pricing.Money(1 << 62)}, Alerts: []int{50, 100}}
	s = huge.Settle(budget.Counter{}, budget.Amount{}, budget.Amount{USD: pricing.Money(1 << 61)})
	if len(s.Alerts) != 1 || s.Alerts[0] != 50 {
		t.Errorf("Settle near the int64 limit: %+v", s)
	}
	if !ch.Admits(budget.Counter{Spent: budget.Amount{USD: 2}}, budget.Amount{USD: 1}) ||
		ch.Admits(budget.Counter{Spent: budget.Amount{USD: 2}}, budget.Amount{USD: 2}) ||
		ch.Admits(budget.Counter{Spent: budget.Amount{USD: 3}}, budget.Amount{}) {
		t.Error("Admits")
	}
}
