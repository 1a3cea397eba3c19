// Package audit is Warden's write-ahead audit trail: the record of what was
// tried, what was decided and why, and what came of it. A decision is
// durably recorded before the action it allows runs; if it cannot be, the
// action does not happen.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"
)

// Code is the stable identifier of a kind of audit event. Codes are part of
// Warden's interface: alerting and queries match on them.
type Code string

// Audit event codes, grouped by domain.
const (
	// Decisions: one per request, written before the action.
	DecisionAllow    Code = "decision.allow"
	DecisionDeny     Code = "decision.deny"
	DecisionApproval Code = "decision.approval_required"
	// RequestRefused is a request refused before any decision: bad input,
	// unknown or revoked credentials.
	RequestRefused Code = "request.refused"
	// ToolOutcome is the result of an allowed tool call, written after it.
	ToolOutcome Code = "tool.outcome"

	// LLMUsage is what an allowed model call consumed, written when it
	// ends and linked to its decision by Ref; Args holds its Usage.
	LLMUsage Code = "llm.usage"

	// AWSCredentials is the outcome of an allowed request for AWS
	// credentials (the broker), linked to its decision by Ref: Status
	// issued, refused or error; Args the session policy's SHA-256, the
	// duration, the source identity and the access key ID (never the
	// secret). AWSCall is a call the runtime role's credentials made, as
	// CloudTrail recorded it.
	AWSCredentials Code = "aws.credentials"
	AWSCall        Code = "aws.call"

	// GitPush is the outcome of a push the git proxy decided (each ref
	// has its decision, linked by Ref): Status refused, forwarded or
	// error; Args the upstream's HTTP status and the bytes sent.
	GitPush Code = "git.push"

	// Approvals: Ref is the approval's ID, Actor who decided.
	ApprovalRequested Code = "approval.requested"
	ApprovalApproved  Code = "approval.approved"
	ApprovalDenied    Code = "approval.denied"
	ApprovalExpired   Code = "approval.expired"
	ApprovalCancelled Code = "approval.cancelled"

	// Cost control: Reason says which budget, limit or loop, and how far.
	BudgetAlert     Code = "budget.alert"     // a threshold of a budget was crossed
	BudgetExhausted Code = "budget.exhausted" // a call was refused for the budget
	RateLimited     Code = "budget.rate_limited"
	WatchdogAlert   Code = "watchdog.alert"
	WatchdogPaused  Code = "watchdog.paused" // the session is paused until released

	SessionLogin    Code = "session.login"
	SessionKilled   Code = "session.killed"
	SessionPaused   Code = "session.paused"
	SessionResumed  Code = "session.resumed"
	AgentKilled     Code = "agent.killed"
	ProjectCreated  Code = "project.created"
	ProjectFrozen   Code = "project.frozen"
	ProjectUnfrozen Code = "project.unfrozen"
	PolicyLoaded    Code = "policy.loaded"
	PolicyRejected  Code = "policy.rejected"
	ServerStarted   Code = "server.started"
	ServerStopped   Code = "server.stopped"
	// AuditPruned records that retention deleted archived records.
	AuditPruned Code = "audit.pruned"
)

// Record is one audit event. Fields that do not apply are empty.
type Record struct {
	// Seq is the record's position in the trail, assigned by the sink.
	Seq  int64     `json:"seq"`
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Code Code      `json:"code"`

	// Who.
	Project       string `json:"project,omitempty"`
	Agent         string `json:"agent,omitempty"`
	Session       string `json:"session,omitempty"`
	ClientSession string `json:"client_session,omitempty"` // the agent's own session ID
	Actor         string `json:"actor,omitempty"`          // who made an administrative change

	// What.
	Kind     string          `json:"kind,omitempty"`
	Action   string          `json:"action,omitempty"`
	Resource string          `json:"resource,omitempty"`
	Args     json.RawMessage `json:"args,omitempty"` // redacted
	Ref      string          `json:"ref,omitempty"`  // links a decision and its outcome (tool_use_id)

	// Decision.
	Effect        string `json:"effect,omitempty"`
	Rule          string `json:"rule,omitempty"`
	Reason        string `json:"reason,omitempty"`
	PolicyVersion string `json:"policy_version,omitempty"`

	// Outcome.
	Status     string `json:"status,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`

	// Chain (see Link): the hashes of the previous record of the whole log
	// and of the same session, and this record's own hash.
	Prev        string `json:"prev,omitempty"`
	SessionPrev string `json:"session_prev,omitempty"`
	Hash        string `json:"hash,omitempty"`
}

// Sink stores records. Append returns only once the record is durable; an
// error means it was not recorded and the caller must not act.
type Sink interface {
	Append(ctx context.Context, r Record) (Record, error)
}

// DeferredSink is a Sink that also takes records nobody waits for, such as
// the outcome of an action already done: AppendDeferred queues r and
// returns, the store commits it with the next records someone waits for
// (or alone, shortly after), and then calls done, which must not block,
// with the record as stored or the error.
type DeferredSink interface {
	Sink
	AppendDeferred(r Record, done func(Record, error))
}

// Reader reads the trail back in order.
type Reader interface {
	// After returns up to limit records with Seq greater than after.
	After(ctx context.Context, after int64, limit int) ([]Record, error)
	// Latest returns the Seq of the newest record, 0 for an empty trail.
	Latest(ctx context.Context) (int64, error)
}

// Usage is what a model call consumed, in the Args of its llm.usage
// record. Tokens are as the provider counts them; cache writes are split
// by their lifetime, which prices them. CostUSD is a decimal string, so
// that no rounding happens on the way to the trail. Estimated is set when
// the call ended without a final count from the provider (a stream cut
// midway) and Warden counted what it saw.
type Usage struct {
	Provider           string `json:"provider,omitempty"`
	Model              string `json:"model"`
	InputTokens        int64  `json:"input_tokens"`
	OutputTokens       int64  `json:"output_tokens"`
	CacheReadTokens    int64  `json:"cache_read_tokens,omitempty"`
	CacheWrite5mTokens int64  `json:"cache_write_5m_tokens,omitempty"`
	CacheWrite1hTokens int64  `json:"cache_write_1h_tokens,omitempty"`
	ReasoningTokens    int64  `json:"reasoning_tokens,omitempty"`
	CostUSD            string `json:"cost_usd"`
	Estimated          bool   `json:"estimated,omitempty"`
}

// ErrClosed is returned by a sink that no longer accepts records.
var ErrClosed = errors.New("audit sink closed")

// NewID returns a random record ID.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return hex.EncodeToString(b)
}
