// Package dynamotest starts a DynamoDB emulator for tests: minidyn's
// DynamoDB JSON API on loopback, spoken to by the real SDK client.
package dynamotest

import (
	"fmt"
	"hash/crc32"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	miniserver "github.com/truora/minidyn/server"

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
