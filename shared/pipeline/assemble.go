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
	Audit    audit.Sink
	// Notifier sends budget alerts and watchdog trips.
	Notifier *notify.Notifier
	// RedactionKey keys the redactor of the audit records' arguments.
	RedactionKey []byte
	Log          *slog.Logger
	// OnAlert, if not nil, is also told each budget alert (the functions
	// publish a metric for the stack's alarm).
	OnAlert func(context.Context, budget.Alert)
}

// Assemble builds the pipeline: identity, policy, no approvals yet, the
// budgets (the ledger's caps and the rate limits), the watchdog, the
// audit with its redactor. It returns the budgets and the watchdog too,
// which the server reads (budget status, a human resuming a session).
func Assemble(p Parts) (*Pipeline, *Budgets, *watchdog.Watchdog) {
	alerts := p.Notifier.BudgetAlert
	if p.OnAlert != nil {
		alerts = func(ctx context.Context, a budget.Alert) {
			p.OnAlert(ctx, a)
			p.Notifier.BudgetAlert(ctx, a)
		}
	}
	budgets := &Budgets{Service: &budget.Service{Ledger: p.Ledger}, Limiter: &budget.Limiter{},
		Policy: p.Policy, Audit: p.Audit, Log: p.Log, Alerts: alerts}
	dog := watchdog.New(watchdog.Config{})
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
