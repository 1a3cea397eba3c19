package approvalpost_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approval/approvaltest"
	"github.com/wardenhq/warden/shared/approvalpost"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/notify/notifytest"
	"github.com/wardenhq/warden/shared/secret"
)

// fixture is an approval service whose new approvals are posted to Slack
// channel C0123ABCDE, and whose messages the tracker keeps and updates.
type fixture struct {
	svc   *approval.Service
	clock *approvaltest.Clock
	slack *notifytest.Slack
	n     *notify.Notifier
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pol, err := policy.Load("p.yaml", []byte(strings.Replace(approvaltest.Policy, `ops: {type: webhook, url: "https://hooks.example.com/warden"}`,
		`ops: {type: slack, channel: C0123ABCDE, secret: slack-bot-token}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{slack: notifytest.NewSlack(t)}
	f.svc, f.clock, _ = approvaltest.Setup(t, &approval.MemoryStore{})
	tracker := &approvalpost.Tracker{Approvals: f.svc}
	f.n, err = notify.New(notify.Config{Channels: pol, Secrets: secret.Map{"slack-bot-token": "xoxb-approvals"},
		SlackAPIURL: f.slack.GetAPIURL(), OnPosted: tracker.Posted})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.n.Close(context.Background()) })
	tracker.Send = f.n.Deliver
	f.svc.Opened = func(ctx context.Context, a approval.Approval) {
		if err := f.n.Send(ctx, a.Channels, approvalpost.Message(a)); err != nil {
			t.Errorf("post approval %s: %v", a.ID, err)
		}
	}
	f.svc.Decided = tracker.Decided
	return f
}

// open opens an approval for session's push and returns it with its post.
func (f *fixture) open(t *testing.T, session string) (approval.Approval, notifytest.Call) {
	t.Helper()
	r := approvaltest.Push(t)
	r.Session = session
	a, outcome, err := f.svc.Check(context.Background(), r)
	if err != nil || outcome != approval.Opened {
		t.Fatalf("Check = %v, %v", outcome, err)
	}
	calls := f.slack.Unread()
	if len(calls) != 1 || calls[0].Method != "post" || calls[0].Channel != "C0123ABCDE" || !calls[0].Buttons() || calls[0].Token != "xoxb-approvals" {
		t.Fatalf("on opening: %+v, want one post with buttons to C0123ABCDE", calls)
	}
	a, err = f.svc.Store.Get(context.Background(), a.ID)
	if err != nil || len(a.Posts) != 1 || a.Posts[0] != (approval.Post{Name: "ops", Secret: "slack-bot-token", Channel: "C0123ABCDE", TS: a.Posts[0].TS}) {
		t.Fatalf("the post is not kept with the approval: %+v, %v", a.Posts, err)
	}
	return a, calls[0]
}

// updated checks that the approval's message was replaced by one without
// buttons that says outcome.
func (f *fixture) updated(t *testing.T, a approval.Approval, outcome string) {
	t.Helper()
	calls := f.slack.Unread()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want the update of %s: %+v", len(calls), a.ID, calls)
	}
	c := calls[0]
	if c.Method != "update" || c.Channel != a.Posts[0].Channel || c.TS != a.Posts[0].TS || c.Buttons() ||
		!strings.Contains(c.Blocks, outcome) || !strings.Contains(c.Blocks, a.ID) {
		t.Errorf("%s %s/%s: %s, want an update of %s/%s without buttons, saying %q", c.Method, c.Channel, c.TS, c.Blocks, a.Posts[0].Channel, a.Posts[0].TS, outcome)
	}
}

// TestMessageFollowsTheApproval: whoever decides (an approver, an
// administrator, the timeout), the message that asked is replaced by the
// outcome, its buttons gone.
func TestMessageFollowsTheApproval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)

	a, _ := f.open(t, "s1")
	if _, err := f.svc.Decide(ctx, a.ID, approval.Decision{By: "alice", Admin: true, Via: "127.0.0.1", Note: "not tonight"}); err != nil {
		t.Fatal(err)
	}
	f.updated(t, a, "Denied by admin:alice via 127.0.0.1 at 2026-11-26T12:00:00Z: not tonight.")

	b, _ := f.open(t, "s2")
	if _, err := f.svc.Decide(ctx, b.ID, approval.Decision{Approve: true, By: approvaltest.Lead, Via: "slack channel C0123ABCDE", For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.updated(t, b, "Approved until 2026-11-26T12:15:00Z by "+approvaltest.Lead+" via slack channel C0123ABCDE")

	c, _ := f.open(t, "s3")
	f.clock.Add(time.Hour)
	if n, err := f.svc.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v", n, err)
	}
	f.updated(t, c, "Expired undecided at 2026-11-26T13:00:00Z.")

	// The notifier function is told the outcome by the state machine: the
	// same update again.
	tracker := &approvalpost.Tracker{Approvals: f.svc, Send: f.n.Deliver}
	if err := tracker.Outcome(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	f.updated(t, c, "Expired undecided")
	// Nothing to update while pending.
	d, _ := f.open(t, "s4")
	if err := tracker.Outcome(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if calls := f.slack.Unread(); len(calls) != 0 {
		t.Errorf("a pending approval's message was touched: %+v", calls)
	}
}

// TestPostedAfterTheDecision: a message posted after its approval was
// decided (the notifier slow, the decision quick) is updated at once.
func TestPostedAfterTheDecision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	opened := f.svc.Opened
	f.svc.Opened = nil
	r := approvaltest.Push(t)
	a, _, err := f.svc.Check(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Cancel(ctx, a.ID, "session-end", "the session ended"); err != nil {
		t.Fatal(err)
	}
	opened(ctx, a) // posted now, as it was when pending
	calls := f.slack.Unread()
	if len(calls) != 2 || calls[0].Method != "post" || !calls[0].Buttons() || calls[1].Method != "update" || calls[1].TS != calls[0].TS || calls[1].Buttons() {
		t.Fatalf("%+v, want the post with buttons, then its update without", calls)
	}
	if !strings.Contains(calls[1].Text, "Cancelled: git:push by claude") {
		t.Errorf("the update's text %q", calls[1].Text)
	}
}

// TestMessage: a pending approval's message asks, with its buttons and
// how to decide from the command line; a decided one tells.
func TestMessage(t *testing.T) {
	t.Parallel()
	a := approval.Approval{ID: "APR-QX5VZ2M3T7K4B6NZ", Project: "web", Agent: "claude", Session: "s1", Action: "git:push",
		Resource: "github.com/acme/web:refs/heads/main", Rule: "main-push", Reason: "pushes to main need a lead", Groups: []string{"leads"},
		Command: "git push origin main", State: approval.Pending, MaxGrant: 15 * time.Minute,
		Created: approvaltest.T0, Expires: approvaltest.T0.Add(time.Hour)}
	m := approvalpost.Message(a)
	if m.Ref != a.ID || m.Event != string(audit.ApprovalRequested) || len(m.Actions) != 3 || m.Actions[1].Label != "Approve for 15m" ||
		!strings.Contains(m.Text, "warden approvals approve "+a.ID) || len(m.Fields) != 8 {
		t.Errorf("pending: %+v", m)
	}
	a.State, a.DecidedBy, a.Decided = approval.Approved, "slack:"+approvaltest.Lead, approvaltest.T0.Add(time.Minute)
	m = approvalpost.Message(a)
	if m.Event != string(audit.ApprovalApproved) || len(m.Actions) != 0 || strings.Contains(m.Text, "warden approvals approve") ||
		m.Title != "Approved: git:push by claude ("+a.ID+")" || !strings.HasSuffix(m.Text, "Approved once by slack:"+approvaltest.Lead+" at 2026-11-26T12:01:00Z.") ||
		len(m.Fields) != 8 {
		t.Errorf("approved: %+v", m)
	}
}
