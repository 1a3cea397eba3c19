// Package dynamotest starts a DynamoDB emulator for tests: minidyn's
// DynamoDB JSON API on loopback, spoken to by the real SDK client.
package dynamotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	miniserver "github.com/truora/minidyn/server"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/dynamo"
)

// Start starts an emulator on 127.0.0.1 that lives as long as the test
// and returns its endpoint, http://127.0.0.1:<port>: for a client made
// elsewhere, such as a function's bootstrap in another process.
func Start(t testing.TB) string {
	// One request at a time: minidyn reads its tables without its lock in
	// some operations (BatchGetItem), a data race under concurrent
	// transactions. Interleavings stay those of whole requests.
	var mu sync.Mutex
	mini := miniserver.NewServer()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		rec := httptest.NewRecorder()
		mini.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		maps.Copy(w.Header(), rec.Header())
		// DynamoDB sends the CRC32 of every response body, and the SDK
		// checks it; minidyn does not send it.
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// NewClient returns an SDK client of the emulator at url, with fixed test
// credentials and opts applied.
func NewClient(url string, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "eu-central-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}, opts...)
}

// Client starts an emulator that lives as long as the test and returns an
// SDK client for it, with opts applied.
func Client(t testing.TB, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return NewClient(Start(t), opts...)
}

var tables atomic.Int64

// DB returns the storage of a deployment over fresh tables (with the
// stack's schema) on client.
func DB(t testing.TB, client *dynamodb.Client) *dynamo.DB {
	t.Helper()
	n := tables.Add(1)
	names := dynamo.Tables{Identity: fmt.Sprint("identity-", n), Audit: fmt.Sprint("audit-", n), Budget: fmt.Sprint("budget-", n), Outbox: fmt.Sprint("outbox-", n)}
	if err := dynamo.CreateTables(t.Context(), client, names); err != nil {
		t.Fatal(err)
	}
	return dynamo.New(client, names)
}

// StreamEvent is the stream event that would report each item of table as
// inserted (NEW_IMAGE), for the handlers of stream-fed functions: the
// emulator has no streams. Only string and number attributes are carried.
func StreamEvent(t testing.TB, client *dynamodb.Client, table string) events.DynamoDBEvent {
	t.Helper()
	out, err := client.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	for i, it := range out.Items {
		img := map[string]events.DynamoDBAttributeValue{}
		for name, v := range it {
			switch v := v.(type) {
			case *types.AttributeValueMemberS:
				img[name] = events.NewStringAttribute(v.Value)
			case *types.AttributeValueMemberN:
				img[name] = events.NewNumberAttribute(v.Value)
			}
		}
		ev.Records = append(ev.Records, events.DynamoDBEventRecord{
			EventID: fmt.Sprint("event-", i), EventName: "INSERT", EventSource: "aws:dynamodb",
			Change: events.DynamoDBStreamRecord{NewImage: img, SequenceNumber: fmt.Sprint(100 + i), StreamViewType: "NEW_IMAGE"},
		})
	}
	return ev
}

// LostAnswers is an option of Client that makes the first answer to each
// of the named operations ("PutItem", "TransactWriteItems") lost after
// the emulator applied the request: the SDK sees a 500, as when DynamoDB
// wrote and the response never arrived, and retries (at once: no backoff)
// with the same request. Calls records the operation of every request
// sent and the ClientRequestToken of each TransactWriteItems.
type LostAnswers struct {
	Ops []string

	mu    sync.Mutex
	lost  map[string]bool
	calls []string
}

// Option installs it on a client.
func (l *LostAnswers) Option(o *dynamodb.Options) {
	inner := o.HTTPClient
	if inner == nil {
		inner = http.DefaultClient
	}
	o.HTTPClient = lostClient{l, inner}
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
}

// Calls are the requests sent: "Op" or "TransactWriteItems token".
func (l *LostAnswers) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

type lostClient struct {
	l     *LostAnswers
	inner interface {
		Do(*http.Request) (*http.Response, error)
	}
}

func (c lostClient) Do(r *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	call := op
	if op == "TransactWriteItems" && r.Body != nil {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct{ ClientRequestToken string }
		_ = json.Unmarshal(body, &in)
		call += " " + in.ClientRequestToken
	}
	resp, err := c.inner.Do(r)
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	c.l.calls = append(c.l.calls, call)
	if err != nil || !slices.Contains(c.l.Ops, op) || c.l.lost[op] {
		return resp, err
	}
	if c.l.lost == nil {
		c.l.lost = map[string]bool{}
	}
	c.l.lost[op] = true
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	body := `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"the answer was lost"}`
	return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amz-Crc32": {strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10)}},
		Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// Appended reads the records appended to db's audit table, sequenced or
// not.
func Appended(t testing.TB, db *dynamo.DB) []audit.Record {
	t.Helper()
	out, err := db.Client().Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(db.Names().Audit)})
	if err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	for _, it := range out.Items {
		pk, _ := it["pk"].(*types.AttributeValueMemberS)
		data, _ := it["record"].(*types.AttributeValueMemberS)
		if pk == nil || data == nil {
			continue
		}
		r, ok, err := dynamo.AppendedRecord(pk.Value, data.Value)
		if err != nil || !ok {
			t.Fatalf("item %s: %v", pk.Value, err)
		}
		recs = append(recs, r)
	}
	return recs
}
