// Package notifier is the notifier function's handler: the outbox table's
// stream sent to the channels. It is apart from package lambdas so that the
// archiver does not link the notifiers (and the policy types they read).
package notifier

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/awsconfig"
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
	Metrics *lambdas.Metrics
	Log     *slog.Logger
}

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
	if n.Metrics != nil {
		n.Metrics.Count(awsconfig.MetricNotificationsFailed, failed, map[string]any{"notification": e.ID, "event": e.Message.Event})
	}
}

// New builds the notifier function's handler: the channels' secrets from
// Secrets Manager under the deployment's prefix.
func New(e lambdas.Env, metrics *lambdas.Metrics) (*Handler, error) {
	secrets, err := e.Secrets()
	if err != nil {
		return nil, err
	}
	n, err := notify.New(notify.Config{Secrets: secrets, Log: e.Log})
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	return &Handler{Deliver: n.Deliver, Metrics: metrics, Log: e.Log}, nil
}
