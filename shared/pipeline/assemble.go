package pipeline

import (
	"context"
	"log/slog"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approvalpost"
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
	// Approvals keeps the approvals; nil: no approval workflow, and a
	// request that needs one is refused.
	Approvals approval.Store
	Audit     audit.Sink
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

// Assembled is the pipeline and the parts of it the server reads: the
// budgets (their status), the watchdog (a human resuming a session), the
// approvals (nil without a store).
type Assembled struct {
	Pipeline  *Pipeline
	Budgets   *Budgets
	Watchdog  *watchdog.Watchdog
	Approvals *approval.Service
}

// Assemble builds the pipeline: identity, policy, approvals, the budgets
// (the ledger's caps and the rate limits), the watchdog, the audit with
// its redactor. New approvals and budget alerts and watchdog trips go to
// the policy's channels through the Notifier.
func Assemble(p Parts) Assembled {
	send := func(what string, to []string, m notify.Message) {
		if len(to) == 0 {
			return
		}
		if err := p.Notifier.Enqueue(to, m); err != nil {
			p.Log.Error("notify "+what, "err", err)
		}
	}
	alerts := func(ctx context.Context, a budget.Alert) {
		if p.OnAlert != nil {
			p.OnAlert(ctx, a)
		}
		send("a budget alert", a.Notify, BudgetMessage(a))
	}
	budgets := &Budgets{Service: &budget.Service{Ledger: p.Ledger}, Limiter: &budget.Limiter{Store: p.Rates},
		Policy: p.Policy, Audit: p.Audit, Log: p.Log, Alerts: alerts}
	dog := watchdog.New(watchdog.Config{Store: p.Watchdog})
	trip := func(to []string, m notify.Message) { send("a watchdog trip", to, m) }
	out := Assembled{Budgets: budgets, Watchdog: dog}
	var gate ApprovalGate = NoApprovals{}
	if p.Approvals != nil {
		out.Approvals = &approval.Service{Store: p.Approvals, Audit: p.Audit, Log: p.Log,
			Opened: func(_ context.Context, a approval.Approval) {
				send("an approval request", a.Channels, approvalpost.Message(a))
			}}
		gate = &Approvals{Service: out.Approvals}
	}
	out.Pipeline = &Pipeline{Auth: p.Identity, Policy: p.Policy, Approvals: gate, Budget: budgets,
		Watchdog: &Watchdog{Dog: dog, Policy: p.Policy, Sessions: p.Identity, Audit: p.Audit, Notify: trip, Log: p.Log},
		Audit:    p.Audit, Log: p.Log, Redactor: audit.NewRedactor(p.RedactionKey)}
	return out
}
