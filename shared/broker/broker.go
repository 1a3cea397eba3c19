// Package broker is Warden's AWS credential broker: an agent holds no AWS
// credentials of its own; it asks, and Warden issues short-lived STS
// credentials of the agent runtime role whose session policy is compiled
// from the Warden policy, so that AWS itself enforces the policy's AWS
// rules on every call, and CloudTrail names the Warden session in each
// (the credentials' source identity).
//
// Two kinds of request, both through the pipeline (authenticated, decided,
// rate-limited, watched, recorded before anything is issued):
//   - the session's credentials: allowed when the principal's AWS rules
//     compile to a session policy with an Allow (policy.SessionPolicy);
//   - one action on one resource: decided by the policy like any request,
//     so an approve rule routes it to humans; once allowed (approved), the
//     credential allows exactly that action on that resource, for at most
//     ActionTTL.
//
// A credential never outlives its session, nor the policy's
// aws.credential_ttl. Each issuance is recorded (aws.credentials: the
// session policy's hash, the duration, the source identity, the access key
// ID — never the secret).
package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awssts"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/pipeline"
)

// STS assumes the runtime role: awssts.Client.
type STS interface {
	AssumeRole(ctx context.Context, in awssts.AssumeRoleInput) (awssts.Credentials, error)
}

// Broker issues credentials. Pipeline, STS and RoleARN are required.
type Broker struct {
	Pipeline *pipeline.Pipeline
	STS      STS
	// RoleARN is the agent runtime role the credentials are of.
	RoleARN string
	// MaxTTL, if not zero, bounds every credential: an AssumeRole made
	// with a role's own credentials (a Lambda function's, an instance
	// profile's) is role chaining, which AWS caps at ChainedTTL.
	MaxTTL time.Duration
	Now    func() time.Time
	Log    *slog.Logger
}

// Request is what an agent asks for: the session's credentials (no
// Action), or a credential for one AWS action on one resource.
type Request struct {
	Action   string `json:"action,omitempty"`
	Resource string `json:"resource,omitempty"`
}

// Credentials are issued credentials in the format of the AWS CLI's and
// SDKs' credential_process.
type Credentials struct {
	Version         int       `json:"Version"`
	AccessKeyID     string    `json:"AccessKeyId"`
	SecretAccessKey string    `json:"SecretAccessKey"`
	SessionToken    string    `json:"SessionToken"`
	Expiration      time.Time `json:"Expiration"`
}

// Actions of the broker's requests and records.
const (
	// ActionAssumeRole is the action of a request for a session's
	// credentials; its resource is the runtime role.
	ActionAssumeRole = "sts:AssumeRole"
	// ActionTTL bounds a credential for one action.
	ActionTTL = 15 * time.Minute
	// MinTTL is the shortest credential AWS issues.
	MinTTL = awssts.MinDuration * time.Second
	// ChainedTTL is the longest credential AWS issues to role chaining.
	ChainedTTL = time.Hour
)

// Session tags of issued credentials (aws:PrincipalTag/… in IAM
// conditions, and in CloudTrail).
const (
	TagProject = "warden:project"
	TagAgent   = "warden:agent"
)

func (b *Broker) now() time.Time {
	if b.Now != nil {
		return b.Now().UTC()
	}
	return time.Now().UTC()
}

func (b *Broker) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.Default()
}

// Issue issues credentials to the session of token, or says why not.
func (b *Broker) Issue(ctx context.Context, token string, r Request) (Credentials, *pipeline.Refusal) {
	var (
		doc *sessionPolicy
		ttl time.Duration
	)
	// The decision and the issuance's outcome share a reference.
	call := pipeline.Call{Token: token, Ref: "aws-" + audit.NewID()[:16]}
	switch {
	case r.Action == "" && r.Resource == "":
		call.Request = policy.Request{Action: ActionAssumeRole, Resource: b.RoleARN}
		call.Evaluate = func(pol *policy.Policy, req *policy.Request) policy.Decision {
			doc, ttl = newSessionPolicy(pol.SessionPolicy(req.Principal)), pol.CredentialTTL
			return sessionGrant(pol, req.Principal, doc)
		}
	case policy.KindOf(r.Action) != policy.KindAWS || r.Resource == "":
		return Credentials{}, &pipeline.Refusal{Status: http.StatusBadRequest,
			Message: fmt.Sprintf("a credential for one action needs an AWS action (service:Action) and its resource ARN; got %q on %q", r.Action, r.Resource)}
	default:
		call.Request = policy.Request{Action: r.Action, Resource: r.Resource}
		call.Evaluate = func(pol *policy.Policy, req *policy.Request) policy.Decision {
			doc = newSessionPolicy(&policy.IAMPolicy{Version: "2012-10-17", Statement: []policy.IAMStatement{
				{Effect: "Allow", Action: []string{r.Action}, Resource: []string{r.Resource}}}})
			ttl = min(ActionTTL, pol.CredentialTTL)
			return pol.Evaluate(req)
		}
	}
	v := b.Pipeline.Decide(ctx, call)
	if !v.Allowed {
		return Credentials{}, v.Refusal
	}
	sess := v.Session
	now := b.now()
	ttl = min(ttl, sess.ExpiresAt.Sub(now)).Truncate(time.Second)
	if b.MaxTTL > 0 {
		ttl = min(ttl, b.MaxTTL)
	}
	outcome := audit.Record{Code: audit.AWSCredentials, Ref: call.Ref, Kind: policy.KindAWS.String(), Action: call.Request.Action,
		Resource: call.Request.Resource}
	if ttl < MinTTL {
		ref := &pipeline.Refusal{Status: http.StatusForbidden, Message: fmt.Sprintf(
			"session %s ends in %s, and AWS issues credentials for at least %s: log in again for a new session", sess.ID, ttl, MinTTL)}
		b.record(ctx, sess, outcome, "refused", ref.Message, nil)
		return Credentials{}, ref
	}
	in := awssts.AssumeRoleInput{RoleARN: b.RoleARN, SessionName: "warden-" + sess.ID, Policy: doc.json,
		DurationSeconds: int32(ttl / time.Second), SourceIdentity: sess.ID,
		Tags: []awssts.Tag{{Key: TagProject, Value: sess.Project}, {Key: TagAgent, Value: sess.Agent}}}
	facts := map[string]any{"policy_sha256": hex.EncodeToString(doc.sum[:]), "duration_seconds": in.DurationSeconds,
		"source_identity": in.SourceIdentity, "role": b.RoleARN}
	c, err := b.STS.AssumeRole(ctx, in)
	if err != nil {
		ref := stsRefusal(sess, in, err)
		if ref.Status >= 500 {
			b.log().Error("assume the runtime role", "session", sess.ID, "err", err)
		}
		b.record(ctx, sess, outcome, "error", ref.Message, facts)
		return Credentials{}, ref
	}
	facts["access_key_id"], facts["expiration"] = c.AccessKeyID, c.Expiration.UTC().Format(time.RFC3339)
	if err := b.record(ctx, sess, outcome, "issued", "", facts); err != nil {
		// The credentials exist, but they are not in the trail: not handed
		// out. They expire unused.
		return Credentials{}, &pipeline.Refusal{Status: http.StatusServiceUnavailable, Message: "the audit trail is unavailable, so no credential is issued"}
	}
	return Credentials{Version: 1, AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Expiration: c.Expiration.UTC()}, nil
}

// sessionPolicy is the session policy of an issuance, encoded and hashed once.
type sessionPolicy struct {
	*policy.IAMPolicy
	json string
	sum  [sha256.Size]byte
}

func newSessionPolicy(doc *policy.IAMPolicy) *sessionPolicy {
	s := &sessionPolicy{IAMPolicy: doc, json: doc.JSON()}
	s.sum = sha256.Sum256([]byte(s.json))
	return s
}

// sessionGrant decides a request for a session's credentials: allowed when
// the principal's AWS rules compile to a session policy that allows
// something, and fits AWS's limit.
func sessionGrant(pol *policy.Policy, pr policy.Principal, doc *sessionPolicy) policy.Decision {
	allows := 0
	for _, st := range doc.Statement {
		if st.Effect == "Allow" {
			allows++
		}
	}
	switch n := len(doc.json); {
	case allows == 0:
		return policy.Decision{Effect: policy.Deny, Reason: fmt.Sprintf("the policy allows %s/%s no AWS action", pr.Project, pr.Agent)}
	case n > policy.MaxSessionPolicyChars:
		return policy.Decision{Effect: policy.Deny, Reason: fmt.Sprintf(
			"the session policy of %s/%s is %d characters, over AWS's limit of %d: narrow or merge its AWS rules",
			pr.Project, pr.Agent, n, policy.MaxSessionPolicyChars)}
	}
	return policy.Decision{Effect: policy.Allow, Reason: fmt.Sprintf("session policy sha256:%s (%d statements) of policy %s",
		hex.EncodeToString(doc.sum[:8]), len(doc.Statement), pol.Version[:min(12, len(pol.Version))])}
}

// stsRefusal says why STS did not issue, without its internals.
func stsRefusal(sess identity.Session, in awssts.AssumeRoleInput, err error) *pipeline.Refusal {
	switch {
	case errors.Is(err, awssts.ErrPackedPolicyTooLarge):
		return &pipeline.Refusal{Status: http.StatusForbidden, Message: fmt.Sprintf(
			"AWS refused the session policy of %s/%s as too large once packed (%d characters with its session tags): narrow or merge its AWS rules",
			sess.Project, sess.Agent, len(in.Policy))}
	case errors.Is(err, awssts.ErrInvalidInput):
		return &pipeline.Refusal{Status: http.StatusForbidden, Message: fmt.Sprintf(
			"the credentials of %s/%s cannot be asked of AWS as the policy makes them: %v", sess.Project, sess.Agent, err)}
	case errors.Is(err, awssts.ErrAccessDenied):
		return &pipeline.Refusal{Status: http.StatusBadGateway, Message: "AWS refused Warden's AssumeRole of the runtime role: check the broker's permissions and the role's trust policy"}
	}
	return &pipeline.Refusal{Status: http.StatusBadGateway, Message: "AWS STS did not issue the credentials; try again"}
}

// record writes an issuance's outcome: issued, refused or error.
func (b *Broker) record(ctx context.Context, sess identity.Session, rec audit.Record, status, reason string, facts map[string]any) error {
	rec.Status, rec.Reason = status, reason
	if facts != nil {
		rec.Args = b.Pipeline.Redactor.JSON(facts)
	}
	if err := b.Pipeline.Outcome(ctx, sess, rec); err != nil {
		b.log().Error("record an AWS credential issuance", "session", sess.ID, "status", status, "err", err)
		return err
	}
	return nil
}
