package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
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

	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/e2e"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/secret"
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

// benchApp is the api or llm function's app over a DynamoDB emulator
// whose calls are counted, with a logged-in session.
// guarded is the test policy with a rate limit and a watchdog, whose
// counters every call reads and writes.
const guarded = testPolicy + `rate_limits:
  - {id: per-session, scope: session, requests: 1000000000, per: 1m}
watchdog: {max_requests_per_minute: 1000000000, upstream_errors: {alert: 10, pause: 20}, tokens_per_minute: 1000000000000, window: 1m}
`

// benchPolicies are the policies each benchmark runs under.
var benchPolicies = []struct{ name, policy string }{{"policy", testPolicy}, {"with-rate-limit-and-watchdog", guarded}}

func benchApp(b *testing.B, upstream, policyText string) (*App, *awsCalls, string) {
	calls := &awsCalls{}
	calls.reset()
	db := dynamotest.DB(b, dynamotest.Client(b, calls.option))
	path := filepath.Join(b.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(policyText), 0o600); err != nil {
		b.Fatal(err)
	}
	llmConfig := fmt.Sprintf("upstreams:\n  anthropic: {api: anthropic, url: %q, key_env: ANTHROPIC_API_KEY}\nroutes:\n  - {model: \"claude-*\", upstream: anthropic}\n", upstream)
	app, err := New(b.Context(), Options{DB: db, Policy: policyload.File(path), LLMConfig: []byte(llmConfig),
		Secrets: secret.Map{"audit-signing-key": strings.Repeat("k", 40), "anthropic-api-key": "sk-ant-bench"},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	return app, calls, token
}

// measure runs call once to warm up, then b.N times, and reports the time
// outside DynamoDB calls and the calls per op.
func (c *awsCalls) measure(b *testing.B, call func()) {
	call()
	c.reset()
	start := time.Now()
	for b.Loop() {
		call()
	}
	c.report(b, time.Since(start))
}

// report adds the time outside DynamoDB calls and the calls per op.
func (c *awsCalls) report(b *testing.B, total time.Duration) {
	n := float64(b.N)
	c.mu.Lock()
	defer c.mu.Unlock()
	b.ReportMetric(float64(total-c.spent)/n, "warden-ns/op")
	b.ReportMetric(float64(c.spent)/n, "dynamodb-ns/op")
	for _, op := range slices.Sorted(maps.Keys(c.count)) {
		b.ReportMetric(float64(c.count[op])/n, op+"/op")
	}
}

// BenchmarkDecision is one PreToolUse decision through the api function's
// handler, as API Gateway delivers it, on a DynamoDB emulator: the
// session read, the policy, the write-ahead decision record. It reports
// the time spent outside the DynamoDB calls (warden-ns/op, the in-Lambda
// overhead) and the calls per decision.
func BenchmarkDecision(b *testing.B) {
	for _, bc := range benchPolicies {
		b.Run(bc.name, func(b *testing.B) {
			app, calls, token := benchApp(b, "http://127.0.0.1:9", bc.policy)
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
			calls.measure(b, call)
		})
	}
}

// BenchmarkModelCall is one non-streamed model call through the llm
// function's handler to the model stand-in: its DynamoDB calls per call
// (warden-ns/op here includes the stand-in's round trip).
func BenchmarkModelCall(b *testing.B) {
	for _, bc := range benchPolicies {
		b.Run(bc.name, func(b *testing.B) {
			stub := e2e.NewModelStub(b, []e2e.Step{e2e.Say("Hello.")})
			app, calls, token := benchApp(b, stub.URL(), bc.policy)
			data, err := os.ReadFile(filepath.Join("..", "..", "events", "llm", "messages.json"))
			if err != nil {
				b.Fatal(err)
			}
			ev := sampleFrom(b, strings.ReplaceAll(string(data), "{{session_token}}", token))
			handle := lambdas.Streaming(app.Handler())
			call := func() {
				resp, err := handle(b.Context(), ev)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("model call: %+v, %v", resp, err)
				}
				if _, err := io.Copy(io.Discard, resp); err != nil {
					b.Fatal(err)
				}
			}
			calls.measure(b, call)
		})
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
