// Package pipeline is the one path every enforcement point runs a request
// through: authenticate, evaluate, approval gate, budget, write-ahead audit,
// then the front end acts. It fails closed at every step: no session, no
// policy, no audit record — no action.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/pricing"
)

// Authenticator turns a bearer token into the session it names.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (identity.Session, error)
}

// PolicySource returns the policy in force, or nil when none is loaded.
type PolicySource interface {
	Current() *policy.Policy
}

// ApprovalGate decides what becomes of a decision that needs a human.
type ApprovalGate interface {
	// Check lets this exact request (args: its arguments as recorded)
	// through when an approval grants it, saying which (granted), or
	// returns a refusal saying what is pending. pol is the policy that
	// made decision d.
	Check(ctx context.Context, sess identity.Session, pol *policy.Policy, req *policy.Request, d policy.Decision, args json.RawMessage) (granted string, ref *Refusal)
}

// Budget reserves the cost of a request before it runs: the worst case,
// against every budget and rate limit that applies, all or nothing. It
// returns a refusal when a cap or limit would be crossed, and otherwise a
// Hold (nil when nothing was reserved) that the front end settles with the
// real cost once the action is done.
type Budget interface {
	Reserve(ctx context.Context, sess identity.Session, req *policy.Request, worst Cost) (Hold, *Refusal)
}

// Cost is what an action spends, in dollars and tokens.
type Cost struct {
	USD    pricing.Money
	Tokens int64
}

// Hold is a reservation, settled once with the real cost. Settling never
// fails the action, which has happened already; the budget reports its
// own errors.
type Hold interface {
	Settle(ctx context.Context, actual Cost)
}

// Refusal is why a request was not allowed, for the front end to answer
// with: an HTTP status and a message safe to show the agent.
type Refusal struct {
	Status  int
	Message string
	// RetryAfter, when set, is when the same request may pass (a rate limit).
	RetryAfter time.Duration
	// Approval, when set, is the pending approval the request waits on.
	Approval string
}

func (r *Refusal) Error() string { return r.Message }

// NoApprovals refuses every decision that needs approval, until the
// approval workflow exists: a request a human must approve does not run.
type NoApprovals struct{}

// Check implements ApprovalGate.
func (NoApprovals) Check(_ context.Context, _ identity.Session, _ *policy.Policy, _ *policy.Request, d policy.Decision, _ json.RawMessage) (string, *Refusal) {
	return "", &Refusal{Status: http.StatusForbidden, Message: fmt.Sprintf(
		"approval required: %s; this Warden has no approval workflow yet, so the request is refused", d.Reason)}
}

// NoBudget reserves nothing: budgets are enforced once they are implemented.
type NoBudget struct{}

// Reserve implements Budget.
func (NoBudget) Reserve(context.Context, identity.Session, *policy.Request, Cost) (Hold, *Refusal) {
	return nil, nil
}

// Pipeline runs requests. All fields are required except Now, Log,
// Watchdog and Redactor (without one, secrets are still removed, but not
// correlated).
type Pipeline struct {
	Auth      Authenticator
	Policy    PolicySource
	Approvals ApprovalGate
	Budget    Budget
	// Watchdog watches for runaway loops; nil for none.
	Watchdog *Watchdog
	Audit    audit.Sink
	Redactor *audit.Redactor
	Now      func() time.Time
	Log      *slog.Logger
}

// Call is one request as a front end received it.
type Call struct {
	Token   string
	Request policy.Request // Principal and Time are filled in by Decide
	// ClientSession is the agent's own session ID (Claude Code's or Codex's).
	ClientSession string
	// Ref links the decision to its outcome, e.g. the tool_use_id.
	Ref string
	// Args is the request's input (e.g. the tool input), recorded redacted.
	Args any
	// Cost is the most the request may spend (a model call's worst case),
	// reserved before it is allowed.
	Cost Cost
	// Evaluate, if set, decides in place of the policy's rules, with the
	// policy in force: the credential broker's request for a session's AWS
	// credentials is allowed as far as the principal's AWS rules compile
	// to a session policy.
	Evaluate func(*policy.Policy, *policy.Request) policy.Decision
}

// Verdict is the pipeline's answer.
type Verdict struct {
	// Allowed is true only when every step passed and the decision is
	// durably recorded.
	Allowed bool
	// Decided is true when the session was authenticated and the policy
	// decided: a refusal then comes from the policy, an approval or a
	// budget, not from the credentials or a broken dependency.
	Decided  bool
	Decision policy.Decision
	Session  identity.Session
	// Refusal says why, when not allowed.
	Refusal *Refusal
	// Record is the audit record written for the decision.
	Record audit.Record
	// Hold is the budget reservation of an allowed request, if any; the
	// front end settles it.
	Hold Hold
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pipeline) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

// Decide runs a call through the pipeline. The returned verdict always
// says whether the front end may act; a refusal is not a Go error.
func (p *Pipeline) Decide(ctx context.Context, call Call) Verdict {
	now := p.now().UTC()
	req := call.Request
	req.Time = now
	rec := audit.Record{
		ID: audit.NewID(), Time: now, ClientSession: call.ClientSession, Ref: call.Ref,
		Kind: policy.KindOf(req.Action).String(), Action: req.Action, Resource: p.Redactor.String(req.Resource),
	}
	if call.Args != nil {
		rec.Args = p.Redactor.JSON(call.Args)
	}

	// 1. Authenticate.
	sess, err := p.Auth.Authenticate(ctx, call.Token)
	if err != nil {
		ref := authRefusal(err)
		if errors.Is(err, identity.ErrRevoked) {
			rec.Project, rec.Agent, rec.Session = sess.Project, sess.Agent, sess.ID
		}
		p.refused(ctx, rec, ref)
		if !errors.Is(err, identity.ErrUnauthenticated) && !errors.Is(err, identity.ErrRevoked) {
			p.log().Error("authenticate", "err", err)
		}
		return Verdict{Session: sess, Refusal: ref}
	}
	rec.Project, rec.Agent, rec.Session = sess.Project, sess.Agent, sess.ID
	req.Principal = policy.Principal{Project: sess.Project, Agent: sess.Agent, Session: sess.ID, Labels: sess.Labels}

	// 2. Evaluate.
	pol := p.Policy.Current()
	if pol == nil {
		ref := &Refusal{Status: http.StatusServiceUnavailable, Message: "no policy is loaded; every request is denied"}
		p.refused(ctx, rec, ref)
		return Verdict{Session: sess, Refusal: ref}
	}
	var d policy.Decision
	if call.Evaluate != nil {
		d = call.Evaluate(pol, &req)
	} else {
		d = pol.Evaluate(&req)
	}
	rec.Effect, rec.Rule, rec.Reason, rec.PolicyVersion = d.Effect.String(), d.Rule, d.Reason, pol.Version
	v := Verdict{Decision: d, Session: sess}

	// 3. Approval gate, 4. budget.
	switch d.Effect {
	case policy.Deny:
		rec.Code = audit.DecisionDeny
		v.Refusal = &Refusal{Status: http.StatusForbidden, Message: "denied: " + d.Reason}
	case policy.Approve:
		granted, ref := p.Approvals.Check(ctx, sess, pol, &req, d, rec.Args)
		if ref != nil {
			rec.Code, v.Refusal = audit.DecisionApproval, ref
			break
		}
		// Approved: allowed, and counted like any allowed request.
		rec.Reason = d.Reason + "; " + granted
		fallthrough
	default:
		rec.Code = audit.DecisionAllow
		v.Hold, v.Refusal = p.Budget.Reserve(ctx, sess, &req, call.Cost)
	}
	// The watchdog sees every decided request; one that trips a pause or
	// a kill is refused.
	if ref := p.Watchdog.request(ctx, sess, &req, rec.Args, d.Effect == policy.Deny); ref != nil && v.Refusal == nil {
		v.Refusal = ref
		if v.Hold != nil {
			v.Hold.Settle(ctx, Cost{})
			v.Hold = nil
		}
	}
	if v.Refusal != nil {
		rec.Reason = v.Refusal.Message
		if rec.Code == audit.DecisionAllow {
			rec.Code = audit.DecisionDeny
		}
	}

	// 5. Write-ahead audit: no record, no action.
	stored, err := p.Audit.Append(ctx, rec)
	if err != nil {
		p.log().Error("audit append failed; refusing", "err", err, "action", req.Action, "session", sess.ID)
		v.Refusal = &Refusal{Status: http.StatusServiceUnavailable, Message: "the audit trail is unavailable, so the request is refused"}
		if v.Hold != nil { // nothing runs, nothing is spent
			v.Hold.Settle(ctx, Cost{})
			v.Hold = nil
		}
		return v
	}
	v.Record = stored
	v.Decided, v.Allowed = true, v.Refusal == nil
	return v
}

// Refuse records a call refused by its front end before the pipeline ran
// (malformed input), naming the session when the token is valid.
func (p *Pipeline) Refuse(ctx context.Context, call Call, ref *Refusal) {
	rec := audit.Record{ID: audit.NewID(), Time: p.now().UTC(), ClientSession: call.ClientSession, Ref: call.Ref,
		Action: call.Request.Action, Resource: p.Redactor.String(call.Request.Resource)}
	if sess, err := p.Auth.Authenticate(ctx, call.Token); err == nil || errors.Is(err, identity.ErrRevoked) {
		rec.Project, rec.Agent, rec.Session = sess.Project, sess.Agent, sess.ID
	}
	p.refused(ctx, rec, ref)
}

// refused records a request refused before a decision. It is best effort:
// the request is refused whether or not the record is written.
func (p *Pipeline) refused(ctx context.Context, rec audit.Record, ref *Refusal) {
	rec.Code, rec.Effect, rec.Reason = audit.RequestRefused, policy.Deny.String(), ref.Message
	if _, err := p.Audit.Append(ctx, rec); err != nil {
		p.log().Error("audit append failed", "err", err, "code", rec.Code)
	}
}

func authRefusal(err error) *Refusal {
	switch {
	case errors.Is(err, identity.ErrRevoked):
		return &Refusal{Status: http.StatusForbidden, Message: err.Error()}
	case errors.Is(err, identity.ErrUnauthenticated):
		return &Refusal{Status: http.StatusUnauthorized, Message: "unknown, malformed or expired Warden token"}
	}
	return &Refusal{Status: http.StatusServiceUnavailable, Message: "the session store is unavailable, so the request is refused"}
}

// Outcome records what came of an allowed request, linked by ref: a
// tool.outcome unless o.Code says otherwise (llm.usage). The caller has
// authenticated already. What happened is recorded even when the caller
// has gone (ctx cancelled), within OutcomeTimeout.
func (p *Pipeline) Outcome(ctx context.Context, sess identity.Session, o audit.Record) error {
	o = p.outcome(sess, o)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OutcomeTimeout)
	defer cancel()
	if _, err := p.Audit.Append(ctx, o); err != nil {
		return fmt.Errorf("record outcome %s: %w", o.Ref, err)
	}
	return nil
}

// OutcomeTimeout bounds the recording of an outcome, which may outlive
// its request.
const OutcomeTimeout = 10 * time.Second

// OutcomeDeferred records an outcome as Outcome does, but without waiting
// for it when the trail can defer it (audit.DeferredSink): for an action
// whose caller has its answer already, so that the record shares the
// commit of the next decision instead of costing one of its own. A record
// that cannot be written is logged.
func (p *Pipeline) OutcomeDeferred(ctx context.Context, sess identity.Session, o audit.Record) {
	o = p.outcome(sess, o)
	logErr := func(err error) {
		p.log().Error("record outcome", "err", err, "ref", o.Ref, "code", o.Code, "session", sess.ID)
	}
	d, ok := p.Audit.(audit.DeferredSink)
	if !ok {
		if _, err := p.Audit.Append(ctx, o); err != nil {
			logErr(err)
		}
		return
	}
	d.AppendDeferred(o, func(_ audit.Record, err error) {
		if err != nil {
			logErr(err)
		}
	})
}

func (p *Pipeline) outcome(sess identity.Session, o audit.Record) audit.Record {
	o.ID, o.Time = audit.NewID(), p.now().UTC()
	if o.Code == "" {
		o.Code = audit.ToolOutcome
	}
	o.Project, o.Agent, o.Session = sess.Project, sess.Agent, sess.ID
	return o
}
