package ledger

import (
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/budget/budgettest"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/pricing"
	"github.com/wardenhq/warden/shared/watchdog"
	"github.com/wardenhq/warden/shared/watchdog/watchdogtest"
)

func TestLedger(t *testing.T) {
	t.Parallel()
	client := dynamotest.Client(t)
	budgettest.Run(t, func(t *testing.T) budget.Ledger { return New(dynamotest.DB(t, client)) })
}

// TestSettleOnAnotherInstance: a reservation made by one function
// instance is settled by another, which reads the hold from its item.
func TestSettleOnAnotherInstance(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := dynamotest.DB(t, dynamotest.Client(t))
	one, other := New(db), New(dynamo.New(db.Client(), db.Names()))
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	k := budget.CounterKey{Budget: "daily", Scope: "web", Period: "day", Window: day}
	r := budget.Reservation{ID: "h1", Worst: budget.Amount{USD: pricing.USD(2), Tokens: 100}, Created: day,
		Charges: []budget.Charge{{Key: k, Cap: budget.Amount{USD: pricing.USD(10)}, Alerts: []int{50}}}}
	if err := one.Reserve(ctx, r); err != nil {
		t.Fatal(err)
	}
	res, err := other.Settle(ctx, "h1", budget.Amount{USD: pricing.USD(5), Tokens: 80})
	if err != nil || len(res) != 1 || res[0].Counter.Spent.USD != pricing.USD(5) || res[0].Counter.Held != (budget.Amount{}) ||
		len(res[0].Alerts) != 1 || res[0].Alerts[0] != 50 {
		t.Fatalf("Settle on another instance = %+v, %v", res, err)
	}
	if _, err := one.Settle(ctx, "h1", budget.Amount{}); err != budget.ErrUnknownHold {
		t.Errorf("Settle again on the instance that reserved it: %v, want ErrUnknownHold", err)
	}
}

// TestSettleAnswerLost: a settlement whose answer is lost after DynamoDB
// applied it is retried by the SDK with the same ClientRequestToken (what
// makes the retry a no-op on DynamoDB); on the emulator, which ignores the
// token, the retry finds the reservation marked by this settlement and
// succeeds. The spend is counted once and the alert reported.
func TestSettleAnswerLost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dynamotest.Start(t)
	db := dynamotest.DB(t, dynamotest.NewClient(url))
	lost := &dynamotest.LostAnswers{Ops: []string{"TransactWriteItems"}}
	reserver, settler := New(db), New(dynamo.New(dynamotest.NewClient(url, lost.Option), db.Names()))
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	k := budget.CounterKey{Budget: "daily", Scope: "web", Period: "day", Window: day}
	r := budget.Reservation{ID: "h1", Worst: budget.Amount{USD: pricing.USD(2)}, Created: day,
		Charges: []budget.Charge{{Key: k, Cap: budget.Amount{USD: pricing.USD(10)}, Alerts: []int{50}}}}
	if err := reserver.Reserve(ctx, r); err != nil {
		t.Fatal(err)
	}
	res, err := settler.Settle(ctx, "h1", budget.Amount{USD: pricing.USD(5)})
	if err != nil || len(res) != 1 || res[0].Counter.Spent.USD != pricing.USD(5) || res[0].Counter.Held != (budget.Amount{}) ||
		len(res[0].Alerts) != 1 {
		t.Fatalf("Settle = %+v, %v; want $5 spent once, nothing held, the 50%% alert", res, err)
	}
	var tokens []string
	for _, c := range lost.Calls() {
		if tok, ok := strings.CutPrefix(c, "TransactWriteItems "); ok {
			tokens = append(tokens, tok)
		}
	}
	if len(tokens) != 2 || tokens[0] == "" || tokens[0] != tokens[1] {
		t.Errorf("TransactWriteItems tokens %q: want the call and its retry with one token", tokens)
	}
	if _, err := reserver.Settle(ctx, "h1", budget.Amount{}); err != budget.ErrUnknownHold {
		t.Errorf("a second settlement: %v, want ErrUnknownHold", err)
	}
}

// TestRatesConformance: the rate limits counted in the budget table, so
// that any number of instances share them.
func TestRatesConformance(t *testing.T) {
	t.Parallel()
	client := dynamotest.Client(t)
	budgettest.RunRates(t, func(t *testing.T) budget.RateStore { return NewRates(dynamotest.DB(t, client)) })
}

// TestWatchdogConformance: the watchdog's counts in the budget table, so
// that a session's calls count together on any instance.
func TestWatchdogConformance(t *testing.T) {
	t.Parallel()
	client := dynamotest.Client(t)
	watchdogtest.Run(t, func(t *testing.T) watchdog.Store { return NewWatchdogStore(dynamotest.DB(t, client)) })
}
