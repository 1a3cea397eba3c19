package notifier

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approval/approvaltest"
	"github.com/wardenhq/warden/shared/approvalpost"
	"github.com/wardenhq/warden/shared/dynamo/approvalstore"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/notify/notifytest"
	"github.com/wardenhq/warden/shared/secret"
)

// sampleApproval is the approval of events/notifier/approval-outcome.json.
const sampleApproval = "APR-QX5VZ2M3T7K4B6NZ"

// TestApprovalOutcome: the notifier posts an approval's message from the
// outbox stream and keeps it with the approval in DynamoDB; invoked with
// the sample outcome step once the approval is decided, it replaces the
// message with the outcome. An update Slack refuses is counted, not an
// error; a malformed step and an unknown approval are errors.
func TestApprovalOutcome(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := dynamotest.DB(t, dynamotest.Client(t))
	slack := notifytest.NewSlack(t)
	svc := &approval.Service{Store: approvalstore.New(db), Audit: &approvaltest.Trail{}}
	posts := &approvalpost.Tracker{Approvals: svc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n, err := notify.New(notify.Config{Secrets: secret.Map{"slack-bot-token": "xoxb-notifier"}, SlackAPIURL: slack.GetAPIURL(),
		OnPosted: posts.Posted, Backoff: time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	posts.Send = n.Deliver
	var metrics strings.Builder
	h := &Handler{Deliver: n.Deliver, Posts: posts, Metrics: &lambdas.Metrics{Stage: "test", Out: &metrics}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	// The sample's approval, pending, as the api function opened it.
	now := time.Now().UTC()
	a := approval.Approval{ID: sampleApproval, Key: "sample-key", Project: "web", Agent: "claude", Session: "s1", Action: "git:push",
		Resource: "github.com/acme/web:refs/heads/main", Rule: "main-push", Groups: []string{"leads"}, Approvers: []string{approvaltest.Lead},
		State: approval.Pending, Created: now, Expires: now.Add(time.Hour), MaxGrant: 15 * time.Minute, Requests: 1}
	if err := svc.Store.Latest(ctx, a.Key, func(*approval.Approval) (*approval.Approval, error) { return &a, nil }); err != nil {
		t.Fatal(err)
	}
	// Its message, as the api function put it in the outbox.
	e := notify.EnvelopeTo([]notify.Target{{Name: "ops-slack", Channel: policy.ChannelDecl{Type: "slack", Channel: "C0123ABCDE", Secret: "slack-bot-token"}}},
		approvalpost.Message(a), now)
	data, _ := json.Marshal(e)
	stream, _ := json.Marshal(events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{EventName: "INSERT",
		Change: events.DynamoDBStreamRecord{NewImage: map[string]events.DynamoDBAttributeValue{"envelope": events.NewStringAttribute(string(data))}}}}})
	if _, err := h.Invoke(ctx, stream); err != nil {
		t.Fatal(err)
	}
	post := slack.Next(t, "post")
	if post.Channel != "C0123ABCDE" || !post.Buttons() {
		t.Fatalf("Slack got %+v, want the post with buttons", post)
	}
	stored, err := svc.Store.Get(ctx, a.ID)
	want := approval.Post{Name: "ops-slack", Secret: "slack-bot-token", Channel: "C0123ABCDE", TS: post.TS}
	if err != nil || len(stored.Posts) != 1 || stored.Posts[0] != want {
		t.Fatalf("the approval keeps %+v (%v), want %+v", stored.Posts, err, want)
	}

	if _, err := svc.Decide(ctx, a.ID, approval.Decision{Approve: true, By: approvaltest.Lead, Via: "slack channel C0123ABCDE"}); err != nil {
		t.Fatal(err)
	}
	step, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "notifier", "approval-outcome.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Invoke(ctx, step); err != nil {
		t.Fatal(err)
	}
	slack.Updated(t, post, "Approved once by "+approvaltest.Lead+" via slack channel C0123ABCDE")
	if metrics.Len() != 0 {
		t.Errorf("metrics: %s", metrics.String())
	}

	slack.RefuseUpdates.Store(true)
	if _, err := h.Invoke(ctx, step); err != nil {
		t.Errorf("an update Slack refuses: %v, want it counted, not an error", err)
	}
	if !strings.Contains(metrics.String(), `"NotificationsFailed":1`) || !strings.Contains(metrics.String(), sampleApproval) {
		t.Errorf("the refused update is not counted: %s", metrics.String())
	}

	for _, bad := range []string{`{"step":"expire","approval":"` + sampleApproval + `"}`, `{"step":"outcome","approval":"APR-1"}`,
		`{"step":"outcome","approval":"APR-AAAAAAAAAAAAAAAA"}`, `[1]`} {
		if _, err := h.Invoke(ctx, json.RawMessage(bad)); err == nil {
			t.Errorf("Invoke(%s) = nil, want an error", bad)
		}
	}
}
