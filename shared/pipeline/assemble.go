package pipeline

import (
	"context"
	"log/slog"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/watchdog"
)

// Parts are what the local server and the Lambda functions build the
// pipeline from: the same pipeline over their own stores.
type Parts struct {
	Identity *identity.Service
	Policy   PolicySource
	Ledger   budget.Ledger
	// Rates keeps the rate limits' counters, Watchdog the watchdog's; nil:
	// this process's memory.
	Rates    budget.RateStore
	Watchdog watchdog.Store
	Audit    audit.Sink
	// Notifier takes the notifications of budget alerts and watchdog trips.
	Notifier Notifier
	// RedactionKey keys the redactor of the audit records' arguments.
	RedactionKey []byte
	Log          *slog.Logger
	// OnAlert, if not nil, is also told each budget alert (the functions
	// publish a metric for the stack's alarm).
	OnAlert func(context.Context, budget.Alert)
}

// Notifier takes a message for the policy's channels named in to, without
// blocking the request: a notify.Notifier queues and sends it (the local
// server); an outbox stores it for the notifier function (AWS).
type Notifier interface {
	Enqueue(to []string, m notify.Message) error
}

// Assemble builds the pipeline: identity, policy, no approvals yet, the
// budgets (the ledger's caps and the rate limits), the watchdog, the
// audit with its redactor. It returns the budgets and the watchdog too,
// which the server reads (budget status, a human resuming a session).
func Assemble(p Parts) (*Pipeline, *Budgets, *watchdog.Watchdog) {
	alerts := func(ctx context.Context, a budget.Alert) {
		if p.OnAlert != nil {
			p.OnAlert(ctx, a)
		}
		if len(a.Notify) == 0 {
			return
		}
		if err := p.Notifier.Enqueue(a.Notify, notify.BudgetMessage(a)); err != nil {
			p.Log.Error("notify a budget alert", "err", err, "budget", a.Budget)
		}
	}
	budgets := &Budgets{Service: &budget.Service{Ledger: p.Ledger}, Limiter: &budget.Limiter{Store: p.Rates},
		Policy: p.Policy, Audit: p.Audit, Log: p.Log, Alerts: alerts}
	dog := watchdog.New(watchdog.Config{Store: p.Watchdog})
	trip := func(to []string, m notify.Message) {
		if err := p.Notifier.Enqueue(to, m); err != nil {
			p.Log.Error("notify a watchdog trip", "err", err)
		}
	}
	pipe := &Pipeline{Auth: p.Identity, Policy: p.Policy, Approvals: NoApprovals{}, Budget: budgets,
		Watchdog: &Watchdog{Dog: dog, Policy: p.Policy, Sessions: p.Identity, Audit: p.Audit, Notify: trip, Log: p.Log},
		Audit:    p.Audit, Log: p.Log, Redactor: audit.NewRedactor(p.RedactionKey)}
	return pipe, budgets, dog
}
