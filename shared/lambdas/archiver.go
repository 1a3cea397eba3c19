// Package lambdas holds the handlers of Warden's Lambda functions, so that
// each function's main in functions/ only reads its configuration, builds
// the adapters and starts the runtime.
package lambdas

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
)

// Trail is what the archiver needs of the audit table.
type Trail interface {
	Sequence(ctx context.Context, recs []audit.Record) (int, error)
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (release func(context.Context), ok bool, err error)
}

// Archiver handles the audit table's stream: it sequences the appended
// records into the hash chain, then, holding the archive lease, signs a
// digest and writes the new archive batches. A batch of stream records
// that cannot be sequenced is reported as failed from its first record
// (the event source retries from there; sequencing is idempotent). Failing
// to digest or archive fails nothing: the records are in the chain, and
// the next invocation archives them.
type Archiver struct {
	Trail    Trail
	Digester *audit.Digester
	Archive  *audit.Archiver
	// Holder names this instance in the lease.
	Holder string
	Log    *slog.Logger
}

// leaseTTL bounds how long a crashed invocation keeps others from
// archiving: longer than a digest and an archive round take.
const leaseTTL = 2 * time.Minute

// Handle is the Lambda handler.
func (a *Archiver) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var recs []audit.Record
	first := ""
	for _, er := range ev.Records {
		r, ok, err := appended(er)
		if err != nil {
			// A malformed item is not retried forever: it is logged, and
			// the verification of the trail will not find it.
			a.Log.Error("audit stream: skip an unreadable item", "event", er.EventID, "err", err)
			continue
		}
		if !ok {
			continue
		}
		if first == "" {
			first = er.Change.SequenceNumber
		}
		recs = append(recs, r)
	}
	if len(recs) > 0 {
		n, err := a.Trail.Sequence(ctx, recs)
		if err != nil {
			a.Log.Error("audit stream: sequence", "records", len(recs), "sequenced", n, "err", err)
			return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: first}}}, nil
		}
		a.Log.Info("audit stream: sequenced", "records", n, "delivered", len(recs))
	}
	a.archive(ctx)
	return events.DynamoDBEventResponse{}, nil
}

// archive signs a digest and writes the archive batches, if no other
// invocation is doing so.
func (a *Archiver) archive(ctx context.Context) {
	release, ok, err := a.Trail.Lease(ctx, "archive", a.Holder, leaseTTL)
	if err != nil || !ok {
		if err != nil {
			a.Log.Error("audit archive: lease", "err", err)
		}
		return
	}
	defer release(context.WithoutCancel(ctx))
	if _, err := a.Digester.Once(ctx); err != nil {
		a.Log.Error("audit archive: sign digest", "err", err)
	}
	if n, err := a.Archive.Once(ctx); err != nil {
		a.Log.Error("audit archive: write batches", "written", n, "err", err)
	} else if n > 0 {
		a.Log.Info("audit archive: batches written", "batches", n)
	}
}

// appended decodes an INSERT of an appended record; ok is false for any
// other change (heads, digests, leases, the sequencing of a record).
func appended(er events.DynamoDBEventRecord) (audit.Record, bool, error) {
	if er.EventName != "INSERT" {
		return audit.Record{}, false, nil
	}
	pk, data := StringAttr(er.Change.NewImage, awsconfig.AttrPK), StringAttr(er.Change.NewImage, "record")
	r, ok, err := dynamo.AppendedRecord(pk, data)
	if err != nil {
		return r, ok, fmt.Errorf("event %s: %w", er.EventID, err)
	}
	return r, ok, nil
}

// StringAttr is a string attribute of an image, "" if absent or of another
// type.
func StringAttr(img map[string]events.DynamoDBAttributeValue, name string) string {
	v, ok := img[name]
	if !ok || v.DataType() != events.DataTypeString {
		return ""
	}
	return v.String()
}
