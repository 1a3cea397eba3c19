package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/notify"
)

// Budgets is the Budget step of a server: the policy's rate limits for
// every request, its spending caps for requests that cost (model calls),
// and the alerts of those caps, recorded in the trail and handed to
// Alerts for the notification channels.
type Budgets struct {
	Service *budget.Service
	Limiter *budget.Limiter
	Policy  PolicySource
	Audit   audit.Sink
	// Alerts, if not nil, is told every alert once it is recorded.
	Alerts func(context.Context, budget.Alert)
	Log    *slog.Logger
	Now    func() time.Time
}

var _ Budget = (*Budgets)(nil)

func (b *Budgets) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Budgets) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.Default()
}

// Reserve implements Budget. A rate limit refuses with 429 and when to
// retry; an exhausted budget with 403, since waiting a moment does not
// help; a broken store with 503.
func (b *Budgets) Reserve(ctx context.Context, sess identity.Session, req *policy.Request, worst Cost) (Hold, *Refusal) {
	pol := b.Policy.Current()
	if err := b.Limiter.Allow(ctx, pol, req.Principal, req.Action, b.now()); err != nil {
		if lim, ok := errors.AsType[*budget.Limited](err); ok {
			return nil, &Refusal{Status: http.StatusTooManyRequests, Message: lim.Error(), RetryAfter: lim.RetryAfter}
		}
		b.log().Error("rate limit", "err", err, "session", sess.ID)
		return nil, &Refusal{Status: http.StatusServiceUnavailable, Message: "rate limits cannot be checked (" + err.Error() + "), so the request is refused"}
	}
	if worst == (Cost{}) {
		return nil, nil // costs nothing: no budget to hold against
	}
	h, err := b.Service.Reserve(ctx, pol, req.Principal, budget.Amount{USD: worst.USD, Tokens: worst.Tokens})
	if ex, ok := errors.AsType[*budget.Exhausted](err); ok {
		return nil, &Refusal{Status: http.StatusForbidden, Message: ex.Error()}
	}
	if err != nil {
		b.log().Error("reserve budget", "err", err, "session", sess.ID)
		return nil, &Refusal{Status: http.StatusServiceUnavailable, Message: "budgets cannot be checked, so the request is refused"}
	}
	return &budgetHold{b: b, h: h, pol: pol, sess: sess, principal: req.Principal, action: req.Action}, nil
}

type budgetHold struct {
	b         *Budgets
	h         *budget.Hold
	pol       *policy.Policy
	sess      identity.Session
	principal policy.Principal
	action    string
}

// Settle implements Hold: the tokens count against the rate limits, the
// real cost replaces the reservation, and each alert it crosses is
// recorded and sent.
func (h *budgetHold) Settle(ctx context.Context, actual Cost) {
	b := h.b
	if err := b.Limiter.AddTokens(ctx, h.pol, h.principal, h.action, actual.Tokens, b.now()); err != nil {
		// The tokens go uncounted: the next calls have that much more room.
		b.log().Error("count tokens against the rate limits", "err", err, "session", h.sess.ID)
	}
	alerts, err := h.h.Settle(ctx, budget.Amount{USD: actual.USD, Tokens: actual.Tokens})
	if err != nil {
		// The reservation stays held at its worst case: budgets err on
		// the safe side until the window ends.
		b.log().Error("settle budget", "err", err, "session", h.sess.ID, "usd", actual.USD.String())
	}
	for _, a := range alerts {
		rec := audit.Record{ID: audit.NewID(), Time: b.now().UTC(), Code: audit.BudgetAlert, Project: h.sess.Project,
			Agent: h.sess.Agent, Session: h.sess.ID, Resource: a.Budget, Reason: a.String()}
		if _, err := b.Audit.Append(ctx, rec); err != nil {
			b.log().Error("record budget alert", "err", err, "alert", a.String())
		}
		if b.Alerts != nil {
			b.Alerts(ctx, a)
		}
	}
}

// BudgetMessage is the notification of a budget alert: a warning, critical
// once the cap is reached.
func BudgetMessage(a budget.Alert) notify.Message {
	sev := notify.Warning
	if a.Threshold >= 100 {
		sev = notify.Critical
	}
	return notify.Message{
		Event:    "budget.alert",
		Title:    fmt.Sprintf("Budget %s at %d%%", a.Budget, a.Threshold),
		Text:     a.String(),
		Severity: sev,
		Time:     a.At,
		Fields: []notify.Field{
			{Name: "budget", Value: a.Budget},
			{Name: a.Scope, Value: a.Key},
			{Name: "threshold", Value: fmt.Sprintf("%d%%", a.Threshold)},
			{Name: "spent", Value: a.Spent.String()},
			{Name: "cap", Value: a.Cap.String()},
		},
	}
}
