package outbox

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/notify"
)

func newOutbox(t *testing.T, db *dynamo.DB) *Outbox {
	t.Helper()
	p, err := policy.Load("p.yaml", []byte("version: 1\nnotifications:\n  hook: {type: webhook, url: \"https://hooks.example.com/w\"}\n  ops: {type: slack, channel: C123, secret: slack-bot-token}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return New(db, p)
}

// TestOutbox: the messages of a request are written at Flush, one item
// each, addressed as the policy declared their channels, with a TTL; the
// item reads back as the notifier function reads it from the stream.
func TestOutbox(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := dynamotest.DB(t, dynamotest.Client(t))
	o := newOutbox(t, db)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return now }
	m := notify.Message{Event: "budget.alert", Title: "Budget tiny at 80%", Text: "80% of the daily budget"}
	if err := o.Enqueue([]string{"hook", "ops"}, m); err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue([]string{"hook", "nope"}, m); err == nil || !strings.Contains(err.Error(), `unknown notification channel "nope"`) {
		t.Errorf("Enqueue to an unknown channel: %v", err)
	}
	if ev := dynamotest.StreamEvent(t, db.Client(), db.Names().Outbox); len(ev.Records) != 0 {
		t.Fatalf("%d items before Flush", len(ev.Records))
	}
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ev := dynamotest.StreamEvent(t, db.Client(), db.Names().Outbox)
	if len(ev.Records) != 1 {
		t.Fatalf("%d items, want 1", len(ev.Records))
	}
	img := ev.Records[0].Change.NewImage
	e, err := notify.ParseEnvelope([]byte(lambdas.StringAttr(img, EnvelopeAttr)))
	if err != nil {
		t.Fatal(err)
	}
	// The TTL: a day on, 2026-11-27T12:00:00Z.
	if img[awsconfig.AttrPK].String() != "note#"+e.ID || img[awsconfig.AttrTTL].Number() != "1795780800" {
		t.Errorf("item key %s, ttl %s", img[awsconfig.AttrPK].String(), img[awsconfig.AttrTTL].Number())
	}
	if len(e.To) != 2 || e.To[0].Name != "hook" || e.To[0].Channel.URL != "https://hooks.example.com/w" ||
		e.To[1].Channel.Type != "slack" || e.To[1].Channel.Secret != "slack-bot-token" ||
		e.Message.Title != m.Title || !e.Message.Time.Equal(now) || e.Message.Severity != notify.Info {
		t.Errorf("envelope %+v", e)
	}
	// Flushed messages are not written again.
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := dynamotest.StreamEvent(t, db.Client(), db.Names().Outbox); len(ev.Records) != 1 {
		t.Errorf("%d items after a second Flush, want 1", len(ev.Records))
	}
}

// TestOutboxBounds: one request keeps at most MaxPending messages; a
// Flush that cannot write says how many were lost, and keeps none.
func TestOutboxBounds(t *testing.T) {
	t.Parallel()
	db := dynamo.New(dynamotest.Client(t), dynamo.Tables{Outbox: "no-such-table"})
	o := newOutbox(t, db)
	for range MaxPending {
		if err := o.Enqueue([]string{"hook"}, notify.Message{Title: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Enqueue([]string{"hook"}, notify.Message{Title: "m"}); !errors.Is(err, notify.ErrQueueFull) {
		t.Errorf("message %d: %v, want ErrQueueFull", MaxPending+1, err)
	}
	err := o.Flush(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "outbox: 100 of 100 notifications not written: ") {
		t.Errorf("Flush: %v", err)
	}
	if err := o.Flush(t.Context()); err != nil {
		t.Errorf("second Flush: %v", err)
	}
}

// TestOutboxAnswerLost: a put whose answer is lost after it was written is
// retried by the SDK, and the message is in the outbox once, not refused.
func TestOutboxAnswerLost(t *testing.T) {
	t.Parallel()
	lost := &dynamotest.LostAnswers{Ops: []string{"PutItem"}}
	db := dynamotest.DB(t, dynamotest.Client(t, lost.Option))
	o := newOutbox(t, db)
	if err := o.Enqueue([]string{"hook"}, notify.Message{Title: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := slices.DeleteFunc(lost.Calls(), func(c string) bool { return c == "CreateTable" })
	if !slices.Equal(got, []string{"PutItem", "PutItem"}) {
		t.Errorf("calls %q, want the put and its retry", got)
	}
	if ev := dynamotest.StreamEvent(t, db.Client(), db.Names().Outbox); len(ev.Records) != 1 {
		t.Errorf("%d items, want 1", len(ev.Records))
	}
}
