package dynamo

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	miniserver "github.com/truora/minidyn/server"

	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/budget/budgettest"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/identity/identitytest"
)

// emulator is minidyn's DynamoDB JSON API on loopback, spoken to by the
// real SDK client.
type emulator struct {
	client *dynamodb.Client
	tables atomic.Int64
}

func newEmulator(t testing.TB) *emulator {
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
	return &emulator{client: newClient(srv.URL)}
}

// newClient is the SDK client for an emulator at url: fixed credentials,
// no retries hidden from the tests but the SDK's defaults.
func newClient(url string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:                          "eu-central-1",
		BaseEndpoint:                    aws.String(url),
		Credentials:                     credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		DisableValidateResponseChecksum: true,
	})
}

// db returns storage over fresh tables.
func (e *emulator) db(t testing.TB) *DB {
	n := e.tables.Add(1)
	tables := Tables{Identity: fmt.Sprintf("identity-%d", n), Audit: fmt.Sprintf("audit-%d", n), Budget: fmt.Sprintf("budget-%d", n)}
	if err := CreateTables(t.Context(), e.client, tables); err != nil {
		t.Fatal(err)
	}
	return New(e.client, tables)
}

func TestIdentityStore(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	identitytest.Run(t, func(t testing.TB) identity.Store { return emu.db(t).Identity() })
}

func TestLedger(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	budgettest.Run(t, func(t *testing.T) budget.Ledger { return emu.db(t).Budgets() })
}
