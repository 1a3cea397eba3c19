package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/shared/awsiam"
	"github.com/wardenhq/warden/shared/identity"
)

// IAM writes the runtime role's inline policies: awsiam.Client.
type IAM interface {
	GetRolePolicy(ctx context.Context, role, name string) (string, error)
	PutRolePolicy(ctx context.Context, role, name, document string) error
	DeleteRolePolicy(ctx context.Context, role, name string) error
}

// Issued credentials cannot be recalled; they can be denied. The Revoker
// keeps, in one inline policy of the runtime role, a Deny statement per
// stopped session (aws:SourceIdentity), agent or project (the session tags
// warden:project and warden:agent), each for the credentials issued before
// the stop (aws:TokenIssueTime): a session resumed, or a project unfrozen,
// gets new credentials that work. A statement is dropped once every
// credential it denies has expired (MaxCredentialLife after the stop).
// Should the policy outgrow IAM's limit, the statements give way to one
// that denies every credential issued before the newest stop, as the
// console's "Revoke active sessions" does: stricter, never looser.
type Revoker struct {
	IAM IAM
	// Role is the runtime role's name; Policy the inline policy's
	// (awsconfig.RevocationPolicy).
	Role, Policy string
	Now          func() time.Time
}

// Stop is what a revocation denies: a session's credentials, or those of
// an agent's sessions (Project and Agent), or a project's (Project), issued
// before At.
type Stop struct {
	Session, Project, Agent string
	At                      time.Time
}

// Limits of the revocation policy.
const (
	// MaxCredentialLife is the longest a runtime role credential lives
	// (the role's maximum session duration).
	MaxCredentialLife = 12 * time.Hour
	// maxPolicyChars is IAM's limit on a role's inline policies, together
	// (10,240 characters), less room for the other policies' share.
	maxPolicyChars = 10_240 - 1_024
	// revokeAttempts bounds the tries when another writer changes the
	// policy between the read and the write.
	revokeAttempts = 4
)

type revocationDoc struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Action    string                       `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition"`
}

// statement is the Deny of s; its Sid names it and says when it stopped,
// so that it can be found again and dropped once harmless.
func (s Stop) statement() statement {
	cond := map[string]map[string]string{"DateLessThan": {"aws:TokenIssueTime": s.At.UTC().Format(time.RFC3339)}}
	var who string
	switch {
	case s.Session != "":
		who = "S" + s.Session
		cond["StringEquals"] = map[string]string{"aws:SourceIdentity": s.Session}
	case s.Agent != "":
		sum := sha256.Sum256([]byte(s.Project + "/" + s.Agent))
		who = "A" + hex.EncodeToString(sum[:10])
		cond["StringEquals"] = map[string]string{"aws:PrincipalTag/" + TagProject: s.Project, "aws:PrincipalTag/" + TagAgent: s.Agent}
	default:
		sum := sha256.Sum256([]byte(s.Project))
		who = "P" + hex.EncodeToString(sum[:10])
		cond["StringEquals"] = map[string]string{"aws:PrincipalTag/" + TagProject: s.Project}
	}
	return statement{Sid: who + "T" + strconv.FormatInt(s.At.Unix(), 10), Effect: "Deny", Action: "*", Resource: "*", Condition: cond}
}

// stoppedAt reads the time of a statement's stop from its Sid.
func stoppedAt(st statement) (time.Time, bool) {
	i := strings.LastIndexByte(st.Sid, 'T')
	if i < 0 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(st.Sid[i+1:], 10, 64)
	return time.Unix(sec, 0), err == nil
}

func (r *Revoker) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Revoke denies the credentials s names. It returns once the policy holds
// the Deny, as read back from IAM; IAM then takes effect within seconds to
// minutes (AWS documents no bound).
func (r *Revoker) Revoke(ctx context.Context, s Stop) error {
	if s.Session == "" && s.Project == "" {
		return errors.New("revoke: no session or project")
	}
	want := s.statement()
	for range revokeAttempts {
		doc, err := r.read(ctx)
		if err != nil {
			return err
		}
		doc.Statement = r.keep(doc.Statement)
		if !slices.ContainsFunc(doc.Statement, func(st statement) bool { return st.Sid == want.Sid || covers(st, s.At) }) {
			doc.Statement = append(doc.Statement, want)
		}
		data, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		if len(data) > maxPolicyChars {
			// Too many stops at once: deny everything issued before
			// this one.
			doc.Statement = []statement{{Sid: "AllT" + strconv.FormatInt(s.At.Unix(), 10), Effect: "Deny", Action: "*", Resource: "*",
				Condition: map[string]map[string]string{"DateLessThan": {"aws:TokenIssueTime": s.At.UTC().Format(time.RFC3339)}}}}
			want = doc.Statement[0]
			if data, err = json.Marshal(doc); err != nil {
				return err
			}
		}
		if err := r.IAM.PutRolePolicy(ctx, r.Role, r.Policy, string(data)); err != nil {
			return fmt.Errorf("revoke the credentials of %s: %w", s.name(), err)
		}
		// Another writer may have put its own version in between: read
		// back, and try again if ours is not there.
		back, err := r.read(ctx)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(back.Statement, func(st statement) bool { return st.Sid == want.Sid || covers(st, s.At) }) {
			return nil
		}
	}
	return fmt.Errorf("revoke the credentials of %s: the runtime role's policy kept changing under %d tries", s.name(), revokeAttempts)
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

// covers reports whether st denies every credential issued before at.
func covers(st statement, at time.Time) bool {
	t, ok := stoppedAt(st)
	return strings.HasPrefix(st.Sid, "AllT") && ok && !t.Before(at)
}

// keep drops the statements whose credentials have all expired.
func (r *Revoker) keep(sts []statement) []statement {
	cutoff := r.now().Add(-MaxCredentialLife)
	return slices.DeleteFunc(sts, func(st statement) bool {
		t, ok := stoppedAt(st)
		return ok && t.Before(cutoff)
	})
}

// read returns the revocation policy as it is (empty when there is none).
func (r *Revoker) read(ctx context.Context) (revocationDoc, error) {
	doc := revocationDoc{Version: "2012-10-17"}
	data, err := r.IAM.GetRolePolicy(ctx, r.Role, r.Policy)
	switch {
	case errors.Is(err, awsiam.ErrNoSuchEntity):
		return doc, nil
	case err != nil:
		return doc, fmt.Errorf("read the runtime role's revocations: %w", err)
	}
	if err := json.Unmarshal([]byte(data), &doc); err != nil {
		return doc, fmt.Errorf("the runtime role's policy %s is not Warden's: %w", r.Policy, err)
	}
	return doc, nil
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
