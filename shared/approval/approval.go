// Package approval routes the requests a policy marks `approve` to the
// humans named for their rule, and lets exactly that request through once
// they say yes.
//
// An approval is bound to the exact request: Key hashes the principal
// (project, agent, session), the action, the resource, the arguments (as
// recorded, redacted) and the policy version. Its lifecycle is pending ->
// approved | denied | expired | cancelled. A request with a pending
// approval joins it rather than opening another; an approved one lets one
// request with its key through (or, approved for a while, every request
// until then); a pending approval not decided within its approver groups'
// timeout expires, and the agent is told it expired, never that it was
// denied. Only an approver of the rule's groups (or an administrator, from
// the command line) may decide, never the requester, and each decision is
// audited with who made it and from where.
//
// The Service keeps approvals in a Store (SQLite locally, DynamoDB on
// AWS); every change to one is an atomic step of the store, so two
// approvers deciding at once yield one decision, and two identical
// requests at once open one approval.
package approval

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is where an approval is in its lifecycle.
type State string

// States.
const (
	Pending   State = "pending"
	Approved  State = "approved"
	Denied    State = "denied"
	Expired   State = "expired"
	Cancelled State = "cancelled"
)

// Approval is one request waiting for, or decided by, a human.
type Approval struct {
	ID  string `json:"id"`  // "APR-" and 16 characters
	Key string `json:"key"` // the request's binding hash

	Project string `json:"project"`
	Agent   string `json:"agent"`
	Session string `json:"session"`
	// Requester, when the session names the person who runs the agent
	// (its label "requester"), is who may never approve it.
	Requester string          `json:"requester,omitempty"`
	Kind      string          `json:"kind,omitempty"`
	Action    string          `json:"action"`
	Resource  string          `json:"resource"`
	Args      json.RawMessage `json:"args,omitempty"` // redacted
	// Command is, for a shell request, the command that needs approval.
	Command       string `json:"command,omitempty"`
	Rule          string `json:"rule"`
	Reason        string `json:"reason"`
	PolicyVersion string `json:"policy_version"`

	// Groups are the approver groups of the rule; Approvers their members'
	// IDs (Slack users and user groups, Telegram users); Channels where
	// the request is posted.
	Groups    []string `json:"groups"`
	Approvers []string `json:"approvers"`
	Channels  []string `json:"channels,omitempty"`
	// MaxGrant is the longest an approver may approve it for (the groups'
	// TTL): a single-use grant stays usable that long.
	MaxGrant time.Duration `json:"max_grant"`

	State   State     `json:"state"`
	Created time.Time `json:"created"`
	// Expires is when a pending approval expires undecided.
	Expires time.Time `json:"expires"`
	// Requests counts the requests that asked for it (the first and those
	// that joined).
	Requests int `json:"requests"`

	DecidedBy  string    `json:"decided_by,omitempty"`  // "slack:U012AB3CD", "admin:alice"
	DecidedVia string    `json:"decided_via,omitempty"` // from where: the channel, the admin's address
	Decided    time.Time `json:"decided,omitzero"`
	Note       string    `json:"note,omitempty"`
	// GrantUntil is when an approved approval stops letting its request
	// through; Reusable that it does so any number of times until then
	// (approved for a while), else once.
	GrantUntil time.Time `json:"grant_until,omitzero"`
	Reusable   bool      `json:"reusable,omitempty"`
	// Uses counts the requests it let through.
	Uses int `json:"uses,omitempty"`
	// Posts are the messages that asked the approvers and can be updated
	// with the outcome (Slack's), as the notifier reported them.
	Posts []Post `json:"posts,omitempty"`
	// TaskToken, on AWS, is the token of the Step Functions task that
	// waits for the decision (Waiting stores it): whoever decides answers
	// that task. Not to be shown: it lets its holder answer the task.
	TaskToken string `json:"task_token,omitempty"`
}

// Post is a message that asked an approval's approvers: the notification
// channel it went to, by its name in the policy and the name of its
// token's secret, and the message, by its channel and timestamp (Slack's
// channel ID and ts).
type Post struct {
	Name    string `json:"name"`
	Secret  string `json:"secret"`
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// MaxPosts bounds the posts an approval keeps: one per channel of its
// approver groups.
const MaxPosts = 20

// The buttons of an approval's message (Slack); their value is the
// approval's ID.
const (
	ActionApprove    = "warden_approve"
	ActionApproveFor = "warden_approve_for"
	ActionDeny       = "warden_deny"
)

// GrantFor is how long "Approve for …" approves: an hour, or less if the
// approver groups allow less.
func GrantFor(a Approval) time.Duration { return min(time.Hour, a.MaxGrant) }

// Usable reports whether the approval lets its request through at now.
func (a *Approval) Usable(now time.Time) bool {
	return a.State == Approved && now.Before(a.GrantUntil) && (a.Reusable || a.Uses == 0)
}

// Key is the binding hash of a request: each field length-prefixed, so
// that no two different requests share it.
func Key(project, agent, session, action, resource string, args []byte, policyVersion string) string {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(project), []byte(agent), []byte(session), []byte(action), []byte(resource), args, []byte(policyVersion)} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// NewID returns a new approval ID: "APR-" and 16 base32 characters.
func NewID() string { return "APR-" + rand.Text()[:16] }

// ValidID reports whether s could be an approval ID.
func ValidID(s string) bool {
	rest, ok := strings.CutPrefix(s, "APR-")
	if !ok || len(rest) != 16 {
		return false
	}
	for _, c := range rest {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Errors.
var (
	ErrNotFound = errors.New("no such approval")
	// ErrDecided is returned when deciding an approval that is no longer
	// pending: decided by someone else first, expired or cancelled.
	ErrDecided = errors.New("the approval is no longer pending")
	// ErrNotApprover is returned when the decider is not an approver of
	// the rule's groups, or is the requester.
	ErrNotApprover = errors.New("not an approver of this request")
)

// Filter selects approvals to list.
type Filter struct {
	State State // "" for any
	Limit int   // 0 for DefaultListLimit
}

// DefaultListLimit is how many approvals List returns unless told.
const DefaultListLimit = 100

// Store keeps approvals. Each method is one atomic step: Latest and
// Update run their callback inside it, so that a change is made on the
// approval as stored, and no other change to it comes in between. A
// callback's error aborts the change and is returned as is.
type Store interface {
	// Latest runs fn on the latest approval of key (nil when there is
	// none); fn may change it, and may return a new approval to store as
	// the key's latest.
	Latest(ctx context.Context, key string, fn func(latest *Approval) (*Approval, error)) error
	// Update runs fn on the approval id and stores what it leaves (an
	// approval fn left as it was need not be written again); ErrNotFound
	// if there is none.
	Update(ctx context.Context, id string, fn func(*Approval) error) (Approval, error)
	Get(ctx context.Context, id string) (Approval, error)
	// List returns approvals, newest first.
	List(ctx context.Context, f Filter) ([]Approval, error)
	// Due returns the pending approvals that expire at or before t.
	Due(ctx context.Context, t time.Time) ([]Approval, error)
}

func errf(id string, err error) error { return fmt.Errorf("approval %s: %w", id, err) }
