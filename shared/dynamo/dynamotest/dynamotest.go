// Package dynamotest starts a DynamoDB emulator for tests: minidyn's
// DynamoDB JSON API on loopback, spoken to by the real SDK client.
package dynamotest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	miniserver "github.com/truora/minidyn/server"
)

// Client starts an emulator that lives as long as the test and returns an
// SDK client for it, with opts applied.
func Client(t testing.TB, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	// One request at a time: minidyn reads its tables without its lock in
	// some operations (BatchGetItem), a data race under concurrent
	// transactions. Interleavings stay those of whole requests.
	var mu sync.Mutex
	mini := miniserver.NewServer()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		mini.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return dynamodb.New(dynamodb.Options{
		Region:                          "eu-central-1",
		BaseEndpoint:                    aws.String(srv.URL),
		Credentials:                     credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		DisableValidateResponseChecksum: true,
	}, opts...)
}
