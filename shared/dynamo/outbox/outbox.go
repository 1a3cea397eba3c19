// Package outbox is the notifications outbox on DynamoDB: the api and llm
// functions do not send notifications themselves (they hold no Slack or
// Telegram token), they put each one, addressed, in the outbox table,
// whose stream feeds the notifier function, which sends it
// (shared/lambdas.Notifier).
//
//	pk "note#"+id     sk "-"     envelope (notify.Envelope, JSON), ttl
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/internal/ddb"
	"github.com/wardenhq/warden/shared/notify"
)

// EnvelopeAttr is the attribute that holds an item's envelope.
const EnvelopeAttr = "envelope"

// MaxPending bounds the messages one request may leave for Flush.
const MaxPending = 100

// keep is how long an item stays after it was written: the notifier has
// read it from the stream long before.
const keep = 24 * time.Hour

// Outbox addresses messages under the policy in force and keeps them until
// Flush writes them, once the request is served. It is safe for concurrent
// use.
type Outbox struct {
	client   *dynamodb.Client
	table    string
	channels notify.Channels
	now      func() time.Time

	mu      sync.Mutex
	pending []notify.Envelope
}

// New returns the outbox of db's outbox table, addressing messages to the
// policy's channels.
func New(db *dynamo.DB, channels notify.Channels) *Outbox {
	return &Outbox{client: db.Client(), table: db.Names().Outbox, channels: channels, now: time.Now}
}

// Enqueue addresses m to the named channels (notify.Address: an unknown
// name fails the call) and keeps it for Flush. Past MaxPending messages it
// refuses, with an error that wraps notify.ErrQueueFull.
func (o *Outbox) Enqueue(to []string, m notify.Message) error {
	e, err := notify.Address(o.channels, to, m, o.now())
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) >= MaxPending {
		return fmt.Errorf("outbox: %d messages wait already: %w", len(o.pending), notify.ErrQueueFull)
	}
	o.pending = append(o.pending, e)
	return nil
}

// Flush writes the messages kept so far, one item each. A message that
// cannot be written is not kept for later (the function may not run
// again): the error says how many were lost.
func (o *Outbox) Flush(ctx context.Context) error {
	o.mu.Lock()
	pending := o.pending
	o.pending = nil
	o.mu.Unlock()
	var errs []error
	for _, e := range pending {
		if err := o.put(ctx, e); err != nil {
			errs = append(errs, fmt.Errorf("notification %s (%s): %w", e.ID, e.Message.Event, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("outbox: %d of %d notifications not written: %w", len(errs), len(pending), errors.Join(errs...))
	}
	return nil
}

func (o *Outbox) put(ctx context.Context, e notify.Envelope) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	item := ddb.Item{M: ddb.Key("note#"+e.ID, "-")}
	item.SetS(EnvelopeAttr, string(data))
	item.SetN(awsconfig.AttrTTL, o.now().Add(keep).Unix())
	// Written once: a repeated put would stream the message again. The ID
	// is random, so an item with it is this message, written by a try
	// whose answer the SDK did not get before it retried.
	_, err = o.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(o.table), Item: item.M,
		ConditionExpression: aws.String("attribute_not_exists(" + awsconfig.AttrPK + ")"),
	})
	if ddb.ConditionFailed(err) {
		return nil
	}
	return err
}
