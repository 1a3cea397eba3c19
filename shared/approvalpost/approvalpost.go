// Package approvalpost is an approval's messages: the one that asks its
// approvers (posted to the channels of its approver groups, with Approve /
// Approve for … / Deny buttons on Slack), and, once it is decided, expired
// or cancelled, the same message updated with the outcome and who decided,
// its buttons gone.
//
// The notifier reports each Slack message it posts for an approval
// (notify.Config.OnPosted); the Tracker keeps it with the approval and
// updates it when the approval leaves pending, whoever decided it and from
// where (a Slack click, the command line, the timeout). A message posted
// after the decision is updated at once, so none keeps its buttons.
package approvalpost

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/wardenhq/warden/policy/channel"
	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/textfmt"
)

// Message is the approval as a message for its channels: what is asked, by
// whom, under which rule; while it is pending, how to decide it and the
// buttons; once not, the outcome.
func Message(a approval.Approval) notify.Message {
	m := notify.Message{Event: string(audit.ApprovalRequested), Severity: notify.Warning, Time: a.Created, Ref: a.ID,
		Title: "Approval needed: " + a.Action + " by " + a.Agent + " (" + a.ID + ")",
		Text: a.Reason + "\nApprove with: warden approvals approve " + a.ID + " (or deny with: warden approvals deny " + a.ID +
			"); it expires at " + a.Expires.Format(time.RFC3339) + ".",
		Fields: []notify.Field{{Name: "project", Value: a.Project}, {Name: "agent", Value: a.Agent}, {Name: "session", Value: a.Session},
			{Name: "action", Value: a.Action}, {Name: "resource", Value: a.Resource}, {Name: "rule", Value: a.Rule},
			{Name: "approvers", Value: strings.Join(a.Groups, ", ")}}}
	if a.Command != "" {
		m.Fields = append(m.Fields, notify.Field{Name: "command", Value: a.Command})
	}
	if a.State != approval.Pending {
		m.Event, m.Severity = eventOf(a.State), notify.Info
		m.Title = titleOf(a.State) + ": " + a.Action + " by " + a.Agent + " (" + a.ID + ")"
		m.Text = a.Reason + "\n" + Outcome(a)
		return m
	}
	m.Actions = []notify.Action{
		{ID: approval.ActionApprove, Label: "Approve", Value: a.ID, Style: "primary"},
		{ID: approval.ActionApproveFor, Label: "Approve for " + textfmt.Duration(approval.GrantFor(a)), Value: a.ID},
		{ID: approval.ActionDeny, Label: "Deny", Value: a.ID, Style: "danger"},
	}
	return m
}

// Outcome says how a decided approval ended, by whom, from where and
// when: "Approved once by slack:U012AB3CD via slack channel C0123ABCDE at
// 2026-11-26T12:03:00Z."
func Outcome(a approval.Approval) string {
	var b strings.Builder
	switch {
	case a.State == approval.Approved && a.Reusable:
		b.WriteString("Approved until " + a.GrantUntil.Format(time.RFC3339))
	case a.State == approval.Approved:
		b.WriteString("Approved once")
	case a.State == approval.Expired:
		return "Expired undecided at " + a.Expires.Format(time.RFC3339) + "."
	default:
		b.WriteString(titleOf(a.State))
	}
	if a.DecidedBy != "" {
		b.WriteString(" by " + a.DecidedBy)
	}
	if a.DecidedVia != "" {
		b.WriteString(" via " + a.DecidedVia)
	}
	if !a.Decided.IsZero() {
		b.WriteString(" at " + a.Decided.Format(time.RFC3339))
	}
	if a.Note != "" {
		b.WriteString(": " + a.Note)
	}
	return b.String() + "."
}

func titleOf(s approval.State) string {
	if s == "" {
		return ""
	}
	return strings.ToUpper(string(s[:1])) + string(s[1:])
}

func eventOf(s approval.State) string {
	switch s {
	case approval.Approved:
		return string(audit.ApprovalApproved)
	case approval.Denied:
		return string(audit.ApprovalDenied)
	case approval.Expired:
		return string(audit.ApprovalExpired)
	case approval.Cancelled:
		return string(audit.ApprovalCancelled)
	}
	return string(audit.ApprovalRequested)
}

// Tracker keeps where approvals were posted and updates those messages
// once each is decided.
type Tracker struct {
	Approvals *approval.Service
	// Send sends an addressed message: queued by the local server's
	// notifier, at once by the notifier function.
	Send func(context.Context, notify.Envelope) error
	Log  *slog.Logger // slog.Default when nil
}

func (t *Tracker) log() *slog.Logger {
	if t.Log != nil {
		return t.Log
	}
	return slog.Default()
}

// Posted is the notifier's OnPosted: it keeps the Slack message posted for
// approval ref, and updates it at once if the approval was decided
// meanwhile.
func (t *Tracker) Posted(ctx context.Context, ref string, to notify.Target) {
	if !approval.ValidID(ref) || to.Channel.Type != "slack" || to.TS == "" {
		return
	}
	p := approval.Post{Name: to.Name, Secret: to.Channel.Secret, Channel: to.Channel.Channel, TS: to.TS}
	a, err := t.Approvals.Posted(ctx, ref, p)
	if err != nil {
		t.log().Error("keep an approval's Slack message; it will not show the outcome", "approval", ref, "err", err)
		return
	}
	if err := t.update(ctx, a, []approval.Post{p}); err != nil {
		t.log().Error("update an approval's Slack message", "approval", ref, "err", err)
	}
}

// Decided updates the messages of an approval that left pending
// (approval.Service.Decided).
func (t *Tracker) Decided(ctx context.Context, a approval.Approval) {
	if err := t.update(ctx, a, a.Posts); err != nil {
		t.log().Error("update an approval's Slack messages", "approval", a.ID, "state", a.State, "err", err)
	}
}

// Outcome updates the messages of approval id as it stands (the notifier
// function, told by the approvals state machine once the approval was
// decided or expired).
func (t *Tracker) Outcome(ctx context.Context, id string) error {
	a, err := t.Approvals.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	return t.update(ctx, a, a.Posts)
}

// update replaces the messages posts with the outcome of a; nothing while
// a is pending.
func (t *Tracker) update(ctx context.Context, a approval.Approval, posts []approval.Post) error {
	if a.State == approval.Pending || len(posts) == 0 {
		return nil
	}
	to := make([]notify.Target, len(posts))
	for i, p := range posts {
		to[i] = notify.Target{Name: p.Name, Channel: channel.Decl{Type: "slack", Channel: p.Channel, Secret: p.Secret}, TS: p.TS}
	}
	return t.Send(ctx, notify.EnvelopeTo(to, Message(a), time.Now()))
}
