// Package notifier is the notifier function's handler: the outbox table's
// stream sent to the channels, and the approvals state machine's outcome
// step, which updates an approval's Slack messages once it is decided or
// expired. It is apart from package lambdas so that the archiver does not
// link the notifiers (and the policy types they read).
package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approvalpost"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/approvalstore"
	"github.com/wardenhq/warden/shared/dynamo/outbox"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/notify"
)

// Handler handles the outbox table's stream: each message the api and
// llm functions put there is sent to its channels (notify.Notifier.Deliver:
// each delivery tried up to its attempts, with backoff). A delivery that
// gives up is logged and counted in the metric NotificationsFailed, which
// the stack alarms on; it is not retried by the event source, which would
// send the message again to the channels that had it, and hold up the
// messages behind it. A malformed item is logged and skipped.
type Handler struct {
	Deliver func(context.Context, notify.Envelope) error
	// Posts updates the Slack messages of approvals (the outcome step).
	Posts   *approvalpost.Tracker
	Metrics *lambdas.Metrics
	Log     *slog.Logger
}

// StepOutcome is the step of the approvals state machine's task that
// invokes the notifier once an approval left pending.
const StepOutcome = "outcome"

// Outcome is that task's payload.
type Outcome struct {
	Step     string `json:"step"`
	Approval string `json:"approval"`
}

// Invoke is the Lambda handler: an outcome step of the approvals state
// machine, or a batch of the outbox table's stream (Handle).
func (n *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe struct {
		Outcome
		Records json.RawMessage
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("notifier: the event is not JSON: %w", err)
	}
	switch {
	case probe.Step != "":
		return nil, n.Outcome(ctx, probe.Outcome)
	case !bytes.HasPrefix(bytes.TrimSpace(probe.Records), []byte("[")):
		return nil, errors.New("notifier: the event is neither an approval's outcome step nor a stream batch")
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("notifier: the stream event: %w", err)
	}
	return n.Handle(ctx, ev)
}

// Outcome updates the Slack messages of an approval that left pending. An
// update Slack refuses is logged and counted as a failed notification, as
// the stream's are; only a malformed event is an error (which fails the
// execution, and raises the stack's alarm).
func (n *Handler) Outcome(ctx context.Context, o Outcome) error {
	if o.Step != StepOutcome || !approval.ValidID(o.Approval) {
		return fmt.Errorf("notifier: not an approval's outcome step: step %q, approval %q", o.Step, o.Approval)
	}
	if n.Posts == nil {
		return errors.New("notifier: approvals are not configured (no identity table)")
	}
	err := n.Posts.Outcome(ctx, o.Approval)
	if errors.Is(err, approval.ErrNotFound) {
		return fmt.Errorf("notifier: approval %s: %w", o.Approval, err)
	}
	if err != nil {
		n.Log.Error("approval messages not updated", "approval", o.Approval, "err", err)
		n.count(approvalEvent, o.Approval, 1)
		return nil
	}
	n.Log.Info("approval messages updated", "approval", o.Approval)
	return nil
}

// approvalEvent names the outcome updates in logs and metrics.
const approvalEvent = "approval.outcome"

// margin is how long before the invocation's deadline the deliveries give
// up: time to log and count what was not sent.
const margin = 5 * time.Second

// Handle is the Lambda handler. The batch's messages are sent at once.
func (n *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancel()
	}
	var wg sync.WaitGroup
	for _, er := range ev.Records {
		if er.EventName != "INSERT" {
			continue
		}
		e, err := notify.ParseEnvelope([]byte(lambdas.StringAttr(er.Change.NewImage, outbox.EnvelopeAttr)))
		if err != nil {
			n.Log.Error("outbox stream: skip an unreadable item", "event", er.EventID, "err", err)
			continue
		}
		wg.Go(func() { n.deliver(ctx, e) })
	}
	wg.Wait()
	return events.DynamoDBEventResponse{}, nil
}

func (n *Handler) deliver(ctx context.Context, e notify.Envelope) {
	err := n.Deliver(ctx, e)
	if err == nil {
		n.Log.Info("notification sent", "id", e.ID, "event", e.Message.Event, "channels", len(e.To))
		return
	}
	failed := 1
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		failed = len(joined.Unwrap())
	}
	n.Log.Error("notification not sent", "id", e.ID, "event", e.Message.Event, "failed", fmt.Sprintf("%d of %d channels", failed, len(e.To)), "err", err)
	n.count(e.Message.Event, e.ID, failed)
}

func (n *Handler) count(event, id string, failed int) {
	if n.Metrics != nil {
		n.Metrics.Count(awsconfig.MetricNotificationsFailed, failed, map[string]any{"notification": id, "event": event})
	}
}

// New builds the notifier function's handler: the channels' secrets from
// Secrets Manager under the deployment's prefix; the approvals (whose
// Slack messages it keeps and updates) in the identity table.
func New(e lambdas.Env, metrics *lambdas.Metrics) (*Handler, error) {
	secrets, err := e.Secrets()
	if err != nil {
		return nil, err
	}
	db := dynamo.New(e.DynamoDB(), e.Tables())
	posts := &approvalpost.Tracker{Approvals: &approval.Service{Store: approvalstore.New(db), Log: e.Log}, Log: e.Log}
	n, err := notify.New(notify.Config{Secrets: secrets, Log: e.Log, OnPosted: posts.Posted})
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	posts.Send = n.Deliver
	return &Handler{Deliver: n.Deliver, Posts: posts, Metrics: metrics, Log: e.Log}, nil
}
