package lambdas

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
)

func newArchiver(db *dynamo.DB, key ed25519.PrivateKey, dir string) *Archiver {
	trail := db.Audit()
	return &Archiver{Trail: trail, Digester: &audit.Digester{Trail: trail, Store: trail, Key: key},
		Archive: &audit.Archiver{Trail: trail, Store: audit.DirStore{Root: dir}, Key: key},
		Holder:  "test", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// readEvents decodes every sample of a function's events.
func readEvents[T any](t *testing.T, function string) map[string]T {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "events", function, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events for %s: %v", function, err)
	}
	out := map[string]T{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ev T
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = ev
	}
	return out
}

// inserted writes the items whose INSERTs the event reports, as Append
// did before the stream carried them, and returns the distinct records.
func inserted(t *testing.T, client *dynamodb.Client, table string, ev events.DynamoDBEvent) int {
	t.Helper()
	ids := map[string]bool{}
	for _, er := range ev.Records {
		pk := StringAttr(er.Change.NewImage, "pk")
		if er.EventName != "INSERT" || StringAttr(er.Change.NewImage, "record") == "" {
			continue
		}
		item := map[string]types.AttributeValue{}
		for name, v := range er.Change.NewImage {
			item[name] = &types.AttributeValueMemberS{Value: v.String()}
		}
		if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
		ids[pk] = true
	}
	return len(ids)
}

// TestArchiverEvents runs every sample stream event through the handler:
// the records are sequenced once however often they are delivered,
// digested, archived, and the archive verifies.
func TestArchiverEvents(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(nil)
	for name, ev := range readEvents[events.DynamoDBEvent](t, "archiver") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := dynamotest.DB(t, dynamotest.Client(t))
			want := inserted(t, db.Client(), db.Names().Audit, ev)
			a := newArchiver(db, key, t.TempDir())
			for range 2 { // the second time, a redelivery of the whole batch
				resp, err := a.Handle(ctx, ev)
				if err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("Handle = %+v, %v", resp, err)
				}
			}
			if latest, err := db.Audit().Latest(ctx); err != nil || latest != int64(want) {
				t.Errorf("trail holds %d records, %v; want %d", latest, err, want)
			}
			rep, err := audit.VerifyArchive(ctx, a.Archive.Store, key.Public().(ed25519.PublicKey), nil)
			if err != nil || !rep.OK || rep.Records != int64(want) {
				t.Errorf("VerifyArchive = %+v, %v; want %d records", rep, err, want)
			}
			if ds, err := db.Audit().Digests(ctx); err != nil || len(ds) != 1 || ds[0].ToSeq != int64(want) {
				t.Errorf("Digests = %+v, %v", ds, err)
			}
		})
	}
}

// TestArchiverReportsFailure: when the records cannot be sequenced, the
// batch is reported failed from its first record, and nothing crashes.
func TestArchiverReportsFailure(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(nil)
	ev := readEvents[events.DynamoDBEvent](t, "archiver")["stream-batch.json"]
	// No tables: every call fails.
	db := dynamo.New(dynamotest.Client(t), dynamo.Tables{Audit: "none"})
	resp, err := newArchiver(db, key, t.TempDir()).Handle(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != ev.Records[0].Change.SequenceNumber {
		t.Errorf("Handle with no table = %+v, %v; want the batch failed from %s", resp, err, ev.Records[0].Change.SequenceNumber)
	}
}

// TestArchiverTakesTurns: while another invocation holds the archive
// lease, records are sequenced but not archived; the next invocation
// archives them.
func TestArchiverTakesTurns(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, key, _ := ed25519.GenerateKey(nil)
	ev := readEvents[events.DynamoDBEvent](t, "archiver")["stream-batch.json"]
	db := dynamotest.DB(t, dynamotest.Client(t))
	want := inserted(t, db.Client(), db.Names().Audit, ev)
	release, ok, err := db.Audit().Lease(ctx, "archive", "other", time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lease = %v, %v", ok, err)
	}
	dir := t.TempDir()
	a := newArchiver(db, key, dir)
	if _, err := a.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if latest, _ := db.Audit().Latest(ctx); latest != int64(want) {
		t.Errorf("trail holds %d records; want %d sequenced", latest, want)
	}
	if last, err := audit.LastBatch(ctx, a.Archive.Store); err != nil || last.Seq != 0 {
		t.Fatalf("archived while another held the lease: %+v, %v", last, err)
	}
	release(context.Background())
	if _, err := a.Handle(ctx, events.DynamoDBEvent{}); err != nil {
		t.Fatal(err)
	}
	if last, err := audit.LastBatch(ctx, a.Archive.Store); err != nil || last.ToSeq != int64(want) {
		t.Errorf("after the lease was given back: last batch %+v, %v", last, err)
	}
}
