package pipeline

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/identity"
)

// RequesterLabel is the session label that names the person an agent runs
// for (a Slack member ID): they may not approve its requests.
const RequesterLabel = "requester"

// Approvals is the ApprovalGate of the approval workflow: a request the
// policy sends to humans passes once an approval of that exact request
// grants it; until then the agent is told the approval's ID and where it
// waits.
type Approvals struct {
	Service *approval.Service
}

// Check implements ApprovalGate.
func (g *Approvals) Check(ctx context.Context, sess identity.Session, pol *policy.Policy, req *policy.Request, d policy.Decision, args json.RawMessage) (string, *Refusal) {
	a, outcome, err := g.Service.Check(ctx, approval.Request{Project: sess.Project, Agent: sess.Agent, Session: sess.ID,
		Requester: sess.Labels[RequesterLabel], Kind: policy.KindOf(req.Action).String(), Action: req.Action, Resource: req.Resource,
		Args: args, Rule: d.Rule, Reason: d.Reason, Command: d.Command, PolicyVersion: pol.Version, Groups: ApproverGroups(pol, d.Rule)})
	switch {
	case err != nil:
		return "", &Refusal{Status: http.StatusServiceUnavailable,
			Message: "approvals cannot be checked (" + err.Error() + "), so the request that needs one is refused"}
	case outcome == approval.Granted:
		return "approved by " + a.DecidedBy + " (" + a.ID + ")", nil
	case outcome == approval.Refused:
		msg := "approval " + a.ID + " denied by " + a.DecidedBy
		if a.Note != "" {
			msg += ": " + a.Note
		}
		return "", &Refusal{Status: http.StatusForbidden, Message: msg}
	}
	return "", &Refusal{Status: http.StatusForbidden, Approval: a.ID, Message: PendingMessage(a)}
}

// ApproverGroups are the approver groups of the policy that decide rule.
func ApproverGroups(pol *policy.Policy, rule string) []approval.Group {
	var out []approval.Group
	for _, g := range pol.GroupsFor(rule) {
		out = append(out, approval.Group{Name: g.Name, Approvers: slices.Concat(g.Slack, g.Telegram), Channels: g.Notify,
			TTL: g.TTL, Timeout: g.Timeout})
	}
	return out
}

// PendingMessage is what the agent is told of a pending approval:
// "approval pending: APR-…, waiting on ops-slack (release-managers): …".
func PendingMessage(a approval.Approval) string {
	msg := "approval pending: " + a.ID
	if len(a.Channels) > 0 {
		msg += ", waiting on " + strings.Join(a.Channels, ", ")
	}
	msg += " (" + strings.Join(a.Groups, ", ") + ")"
	if a.Reason != "" {
		msg += ": " + a.Reason
	}
	return msg
}
