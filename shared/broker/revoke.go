package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/awsiam"
	"github.com/wardenhq/warden/shared/awssts"
	"github.com/wardenhq/warden/shared/identity"
)

// IAM writes the runtime role's inline policies: awsiam.Client.
type IAM interface {
	GetRolePolicy(ctx context.Context, role, name string) (string, error)
	PutRolePolicy(ctx context.Context, role, name, document string) error
	DeleteRolePolicy(ctx context.Context, role, name string) error
	ListRolePolicies(ctx context.Context, role string) ([]string, error)
}

// Issued credentials cannot be recalled; they can be denied. The Revoker
// puts, for each stopped session (aws:SourceIdentity), agent or project
// (the session tags warden:project and warden:agent), an inline policy on
// the runtime role that denies the credentials issued before the stop
// (aws:TokenIssueTime): a session resumed, or a project unfrozen, gets new
// credentials that work. One policy per stop, named by what and when it
// stopped (awsconfig.RevocationPrefix + …), so that stops written at once
// by several instances cannot overwrite each other (IAM has no conditional
// write). Once a role's inline policies reach IAM's size limit, those
// whose credentials have all expired (MaxCredentialLife after their stop)
// are deleted; should that not be enough, the stops give way to one policy
// that denies every credential issued before the newest, as the console's
// "Revoke active sessions" does: stricter, never looser.
type Revoker struct {
	IAM IAM
	// Role is the runtime role's name.
	Role string
	Now  func() time.Time
}

// Stop is what a revocation denies: a session's credentials, or those of
// an agent's sessions (Project and Agent), or a project's (Project), issued
// before At.
type Stop struct {
	Session, Project, Agent string
	At                      time.Time
}

// MaxCredentialLife is the longest a runtime role credential lives (the
// role's maximum session duration).
const MaxCredentialLife = awssts.MaxDuration * time.Second

// revokeAttempts bounds the tries of raising the policy that denies
// everything, when other instances raise it at once.
const revokeAttempts = 8

// allPolicy is the name of the policy that denies every credential issued
// before its time.
const allPolicy = awsconfig.RevocationPrefix + "all"

type denyDoc struct {
	Version   string          `json:"Version"`
	Statement []denyStatement `json:"Statement"`
}

type denyStatement struct {
	Effect    string                       `json:"Effect"`
	Action    string                       `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition"`
}

// deny is a policy that denies the credentials issued before at that
// match (no match: every credential).
func deny(match map[string]string, at time.Time) string {
	cond := map[string]map[string]string{"DateLessThan": {"aws:TokenIssueTime": at.UTC().Format(time.RFC3339)}}
	if len(match) > 0 {
		cond["StringEquals"] = match
	}
	data, _ := json.Marshal(denyDoc{Version: "2012-10-17", Statement: []denyStatement{{Effect: "Deny", Action: "*", Resource: "*", Condition: cond}}})
	return string(data)
}

// policy is the name and the document of s's policy.
func (s Stop) policy() (string, string) {
	var who string
	var match map[string]string
	switch {
	case s.Session != "":
		who, match = "S"+s.Session, map[string]string{"aws:SourceIdentity": s.Session}
	case s.Agent != "":
		sum := sha256.Sum256([]byte(s.Project + "/" + s.Agent))
		who = "A" + hex.EncodeToString(sum[:10])
		match = map[string]string{"aws:PrincipalTag/" + TagProject: s.Project, "aws:PrincipalTag/" + TagAgent: s.Agent}
	default:
		sum := sha256.Sum256([]byte(s.Project))
		who, match = "P"+hex.EncodeToString(sum[:10]), map[string]string{"aws:PrincipalTag/" + TagProject: s.Project}
	}
	return awsconfig.RevocationPrefix + who + "-" + strconv.FormatInt(s.At.Unix(), 10), deny(match, s.At)
}

// stoppedAt reads the time of a stop's policy from its name.
func stoppedAt(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, awsconfig.RevocationPrefix)
	i := strings.LastIndexByte(rest, '-')
	if !ok || i < 0 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(rest[i+1:], 10, 64)
	return time.Unix(sec, 0), err == nil
}

func (r *Revoker) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (s Stop) name() string {
	switch {
	case s.Session != "":
		return "session " + s.Session
	case s.Agent != "":
		return "agent " + s.Project + "/" + s.Agent
	}
	return "project " + s.Project
}

// Revoke denies the credentials s names. It returns once IAM holds the
// Deny; IAM then applies it within seconds to minutes (AWS documents no
// bound).
func (r *Revoker) Revoke(ctx context.Context, s Stop) error {
	if s.Session == "" && s.Project == "" {
		return errors.New("revoke: no session or project")
	}
	name, doc := s.policy()
	err := r.IAM.PutRolePolicy(ctx, r.Role, name, doc)
	if errors.Is(err, awsiam.ErrLimitExceeded) {
		if err = r.prune(ctx, time.Time{}); err == nil {
			err = r.IAM.PutRolePolicy(ctx, r.Role, name, doc)
		}
		if errors.Is(err, awsiam.ErrLimitExceeded) {
			err = r.revokeAll(ctx, s.At)
		}
	}
	if err != nil {
		return fmt.Errorf("revoke the credentials of %s: %w", s.name(), err)
	}
	return nil
}

// prune deletes the stops' policies whose credentials have all expired,
// and, when covered is set, those the policy that denies everything issued
// before covered makes needless.
func (r *Revoker) prune(ctx context.Context, covered time.Time) error {
	names, err := r.IAM.ListRolePolicies(ctx, r.Role)
	if err != nil {
		return err
	}
	expired := r.now().Add(-MaxCredentialLife)
	for _, name := range names {
		at, ok := stoppedAt(name)
		if !ok || name == allPolicy || !(at.Before(expired) || !covered.IsZero() && !at.After(covered)) {
			continue
		}
		if err := r.IAM.DeleteRolePolicy(ctx, r.Role, name); err != nil && !errors.Is(err, awsiam.ErrNoSuchEntity) {
			return err
		}
	}
	return nil
}

// revokeAll raises the policy that denies every credential to those
// issued before at (another instance may raise it at once: the higher
// time stays), then deletes the stops it covers. With no room even for
// it, a covered stop's policy gives way first.
func (r *Revoker) revokeAll(ctx context.Context, at time.Time) error {
	for range revokeAttempts {
		cur, err := r.allTime(ctx)
		if err != nil {
			return err
		}
		if !cur.Before(at) {
			return r.prune(ctx, cur)
		}
		err = r.IAM.PutRolePolicy(ctx, r.Role, allPolicy, deny(nil, at))
		if errors.Is(err, awsiam.ErrLimitExceeded) {
			err = r.makeRoom(ctx, at)
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("the policy %s kept changing under %d tries", allPolicy, revokeAttempts)
}

// allTime is the time before which every credential is denied, zero
// without such a policy.
func (r *Revoker) allTime(ctx context.Context) (time.Time, error) {
	data, err := r.IAM.GetRolePolicy(ctx, r.Role, allPolicy)
	if errors.Is(err, awsiam.ErrNoSuchEntity) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	var doc denyDoc
	if err := json.Unmarshal([]byte(data), &doc); err != nil || len(doc.Statement) != 1 {
		return time.Time{}, fmt.Errorf("the runtime role's policy %s is not Warden's", allPolicy)
	}
	return time.Parse(time.RFC3339, doc.Statement[0].Condition["DateLessThan"]["aws:TokenIssueTime"])
}

// makeRoom deletes the oldest stop's policy that the policy about to deny
// everything issued before at will cover.
func (r *Revoker) makeRoom(ctx context.Context, at time.Time) error {
	names, err := r.IAM.ListRolePolicies(ctx, r.Role)
	if err != nil {
		return err
	}
	oldest, found := "", time.Time{}
	for _, name := range names {
		if t, ok := stoppedAt(name); ok && name != allPolicy && !t.After(at) && (oldest == "" || t.Before(found)) {
			oldest, found = name, t
		}
	}
	if oldest == "" {
		return fmt.Errorf("the runtime role's inline policies leave no room for %s, and none of them is Warden's to remove", allPolicy)
	}
	if err := r.IAM.DeleteRolePolicy(ctx, r.Role, oldest); err != nil && !errors.Is(err, awsiam.ErrNoSuchEntity) {
		return err
	}
	return nil
}

// RoleName is the name of the role of an IAM role ARN
// (arn:aws:iam::ACCOUNT:role/PATH/NAME), "" if arn is not one.
func RoleName(arn string) string {
	_, rest, ok := strings.Cut(arn, ":role/")
	if !ok || !strings.HasPrefix(arn, "arn:aws") {
		return ""
	}
	return rest[strings.LastIndexByte(rest, '/')+1:]
}

// Stopped is identity.Service's Stopped hook: each stop revokes the
// credentials issued before it.
func (r *Revoker) Stopped(ctx context.Context, s identity.Stop) error {
	return r.Revoke(ctx, Stop{Session: s.Session, Project: s.Project, Agent: s.Agent, At: s.At})
}
