package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	smithymw "github.com/aws/smithy-go/middleware"

	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/policyload"
)

// awsCalls records the DynamoDB calls made and the time spent in them.
type awsCalls struct {
	mu    sync.Mutex
	count map[string]int
	spent time.Duration
}

func (c *awsCalls) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count, c.spent = map[string]int{}, 0
}

// option adds a middleware around each whole call (retries included).
func (c *awsCalls) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *smithymw.Stack) error {
		return s.Initialize.Add(smithymw.InitializeMiddlewareFunc("count", func(ctx context.Context, in smithymw.InitializeInput, next smithymw.InitializeHandler) (smithymw.InitializeOutput, smithymw.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			c.mu.Lock()
			c.count[middleware.GetOperationName(ctx)]++
			c.spent += time.Since(start)
			c.mu.Unlock()
			return out, md, err
		}), smithymw.Before)
	})
}

// BenchmarkDecision is one PreToolUse decision through the api function's
// handler, as API Gateway delivers it, on a DynamoDB emulator: the
// session read, the policy, the write-ahead decision record. It reports
// the time spent outside the DynamoDB calls (warden-ns/op, the in-Lambda
// overhead) and the calls per decision.
func BenchmarkDecision(b *testing.B) {
	calls := &awsCalls{}
	calls.reset()
	client := dynamotest.Client(b, calls.option)
	tables := dynamo.Tables{Identity: "identity", Audit: "audit", Budget: "budget"}
	if err := dynamo.CreateTables(b.Context(), client, tables); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(testPolicy), 0o600); err != nil {
		b.Fatal(err)
	}
	app, err := New(b.Context(), Options{DB: dynamo.New(client, tables), Policy: policyload.File(path),
		Secrets: mapSecrets{"audit-signing-key": strings.Repeat("k", 40)}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	key, err := app.Server.Identity.CreateProject(b.Context(), "web")
	if err != nil {
		b.Fatal(err)
	}
	_, token, err := app.Server.Identity.Login(b.Context(), key, "claude", nil, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "events", "api", "pre-tool-use-allowed.json"))
	if err != nil {
		b.Fatal(err)
	}
	ev := sampleFrom(b, strings.ReplaceAll(string(data), "{{session_token}}", token))
	handle := lambdas.Buffered(app.Handler())
	call := func() {
		resp, err := handle(b.Context(), ev)
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"permissionDecision":"allow"`) {
			b.Fatalf("decision: %+v, %v", resp, err)
		}
	}
	call()
	calls.reset()
	start := time.Now()
	for b.Loop() {
		call()
	}
	total := time.Since(start)
	n := float64(b.N)
	calls.mu.Lock()
	defer calls.mu.Unlock()
	b.ReportMetric(float64(total-calls.spent)/n, "warden-ns/op")
	b.ReportMetric(float64(calls.spent)/n, "dynamodb-ns/op")
	for _, op := range slices.Sorted(func(yield func(string) bool) {
		for k := range calls.count {
			if !yield(k) {
				return
			}
		}
	}) {
		b.ReportMetric(float64(calls.count[op])/n, op+"/op")
	}
}

func sampleFrom(t testing.TB, s string) *events.APIGatewayProxyRequest {
	t.Helper()
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		t.Fatal(fmt.Errorf("sample: %w", err))
	}
	return &ev
}
