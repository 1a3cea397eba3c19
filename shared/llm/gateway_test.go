package llm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/pipeline"
	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/pricing"
)

const testPolicy = `version: 1
rules:
  - id: models
    effect: allow
    action: llm:invoke
    resource: ["anthropic/claude-sonnet-4-5*", "openai/gpt-5*"]
  - id: no-opus
    effect: deny
    action: llm:invoke
    resource: "anthropic/claude-opus-*"
`

const providerKey = "sk-ant-provider-key-only-warden-holds"

// upstreamFunc is a stand-in provider: it checks what Warden sent and
// answers as the handler says.
type upstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []*http.Request
	// bodies are the request bodies received.
	bodies  []string
	handler http.HandlerFunc
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	u := &upstream{handler: h}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got, u.bodies = append(u.got, r.Clone(context.Background())), append(u.bodies, string(body))
		u.mu.Unlock()
		u.handler(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) calls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.got)
}

type fixture struct {
	gw    *Gateway
	srv   *httptest.Server
	sink  *audit.MemorySink
	token string
	sess  identity.Session
	up    *upstream
}

func newFixture(t *testing.T, h http.HandlerFunc, opts ...func(*Gateway)) *fixture {
	t.Helper()
	ctx := context.Background()
	p, err := policy.Load("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	ids := identity.NewService(identity.NewMemoryStore(), nil)
	key, err := ids.CreateProject(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sink: &audit.MemorySink{}, up: newUpstream(t, h)}
	if f.sess, f.token, err = ids.Login(ctx, key, "claude", nil, 0); err != nil {
		t.Fatal(err)
	}
	upURL, _ := url.Parse(f.up.srv.URL)
	conf := &Config{
		Upstreams: map[string]*Upstream{
			"anthropic": {Name: "anthropic", API: Anthropic, Provider: "anthropic", URL: upURL, Key: providerKey, HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second},
			"openai":    {Name: "openai", API: OpenAI, Provider: "openai", URL: upURL, Key: "sk-openai-provider", HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second},
		},
		Routes: []Route{{Model: "claude-*", Upstream: "anthropic"}, {Model: "*", Upstream: "openai"}},
	}
	f.gw = &Gateway{Pipeline: &pipeline.Pipeline{Auth: ids, Policy: policyload.Static(p), Approvals: pipeline.NoApprovals{},
		Budget: pipeline.NoBudget{}, Audit: f.sink}, Config: conf, Prices: pricing.Default()}
	for _, o := range opts {
		o(f.gw)
	}
	mux := http.NewServeMux()
	f.gw.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// post sends a Messages request as Claude Code does.
func (f *fixture) post(t *testing.T, path, body string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Anthropic-Beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
	req.Header.Set("X-Claude-Code-Session-Id", "cc-session-1")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// anthropicStream is an SSE answer as the Messages API streams it.
var anthropicStream = []string{
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":1500,\"cache_read_input_tokens\":9000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":1000,\"ephemeral_1h_input_tokens\":500},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	"event: ping\ndata: {\"type\": \"ping\"}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" there, how can I help?\"}}\n\n",
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":310}}\n\n",
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":1500,\"cache_read_input_tokens\":9000,\"output_tokens\":340}}\n\n",
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
}

// wantTokens are the tokens of anthropicStream.
var wantTokens = pricing.Tokens{Input: 12, Output: 340, CacheRead: 9000, CacheWrite5m: 1000, CacheWrite1h: 500}

func sseHandler(events []string, between func(i int)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Request-Id", "req_upstream_1")
		w.WriteHeader(200)
		for i, e := range events {
			if between != nil {
				between(i)
			}
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	}
}

const messagesBody = `{"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u"}}`

// usageRecord returns the llm.usage record and its Usage, waiting for it
// a while: it is written once the call has ended, which may be after the
// agent has the whole answer.
func usageRecord(t *testing.T, sink *audit.MemorySink) (audit.Record, audit.Usage) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		for _, r := range sink.Records() {
			if r.Code == audit.LLMUsage {
				var u audit.Usage
				if err := json.Unmarshal(r.Args, &u); err != nil {
					t.Fatal(err)
				}
				return r, u
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no llm.usage record in %d records", len(sink.Records()))
		}
	}
}

// handCost prices tokens by the table's per-million prices (short
// context), rounding up.
func handCost(p pricing.Price, t pricing.Tokens) pricing.Money {
	sum := t.Input*int64(p.Input) + t.Output*int64(p.Output) + t.CacheRead*int64(p.CacheRead) +
		t.CacheWrite5m*int64(p.CacheWrite5m) + t.CacheWrite1h*int64(p.CacheWrite1h)
	return pricing.Money((sum + 999_999) / 1_000_000)
}

func TestMessagesStreamed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sseHandler(anthropicStream, nil))
	resp := f.post(t, "/v1/messages?beta=true", messagesBody)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != strings.Join(anthropicStream, "") {
		t.Fatalf("answer: %d\n%s", resp.StatusCode, got)
	}
	if resp.Header.Get("Request-Id") != "req_upstream_1" || resp.Header.Get("X-Warden-Call") == "" {
		t.Errorf("answer headers: %v", resp.Header)
	}

	// Upstream: the same path, query, headers and body; the provider key
	// instead of the Warden token.
	up := f.up.got[0]
	switch {
	case f.up.bodies[0] != messagesBody:
		t.Errorf("upstream body changed: %s", f.up.bodies[0])
	case up.URL.Path != "/v1/messages" || up.URL.RawQuery != "beta=true":
		t.Errorf("upstream URL %s", up.URL)
	case up.Header.Get("X-Api-Key") != providerKey || up.Header.Get("Authorization") != "":
		t.Errorf("upstream credentials: x-api-key %q, authorization %q", up.Header.Get("X-Api-Key"), up.Header.Get("Authorization"))
	case up.Header.Get("Anthropic-Beta") != "claude-code-20250219,interleaved-thinking-2025-05-14" || up.Header.Get("Anthropic-Version") != "2023-06-01":
		t.Errorf("upstream anthropic headers: %v", up.Header)
	case up.Header.Get("X-Claude-Code-Session-Id") != "cc-session-1":
		t.Errorf("upstream session header: %v", up.Header)
	}
	for k, vs := range up.Header {
		for _, v := range vs {
			if strings.Contains(v, f.token) {
				t.Errorf("the Warden token went upstream in %s", k)
			}
		}
	}

	// Audit: the decision, then the usage with the exact tokens and cost.
	recs := f.sink.Records()
	if recs[0].Code != audit.DecisionAllow || recs[0].Resource != "anthropic/claude-sonnet-4-5" || recs[0].Rule != "models" || recs[0].ClientSession != "cc-session-1" {
		t.Errorf("decision: %+v", recs[0])
	}
	rec, u := usageRecord(t, f.sink)
	price, _ := pricing.Default().Lookup("anthropic", "claude-sonnet-4-5")
	want := handCost(price, wantTokens)
	if rec.Ref != recs[0].Ref || rec.Status != "ok" || rec.Session != f.sess.ID {
		t.Errorf("usage record: %+v", rec)
	}
	if u.InputTokens != 12 || u.OutputTokens != 340 || u.CacheReadTokens != 9000 || u.CacheWrite5mTokens != 1000 || u.CacheWrite1hTokens != 500 ||
		u.CostUSD != want.Decimal() || u.Estimated || u.Model != "claude-sonnet-4-5-20250929" {
		t.Errorf("usage %+v, want %+v and cost %s", u, wantTokens, want.Decimal())
	}
	for _, r := range recs {
		if strings.Contains(string(r.Args), f.token) || strings.Contains(string(r.Args), providerKey) {
			t.Errorf("a credential in the audit: %+v", r)
		}
	}
}

// TestEventsAreNotBatched: the stand-in sends the next event only once
// the agent has read the previous one, so any buffering would hang.
func TestEventsAreNotBatched(t *testing.T) {
	t.Parallel()
	step := newLockstep()
	f := newFixture(t, sseHandler(anthropicStream, step.wait))
	resp := f.post(t, "/v1/messages", messagesBody)
	defer resp.Body.Close()
	step.read(t, resp.Body, anthropicStream)
}

// lockstep makes a stand-in send event i > 0 only once the agent has read
// event i-1 (or after 5 s).
type lockstep chan struct{}

func newLockstep() lockstep { return make(lockstep) }

// wait is the stand-in's side, called before it sends event i.
func (l lockstep) wait(i int) {
	if i > 0 {
		select {
		case <-l:
		case <-time.After(5 * time.Second):
		}
	}
}

// read is the agent's side: it reads the SSE events of body, checks each
// against want, and lets the stand-in send the next; events held back
// (the stand-in's 5 s timeouts) fail the test.
func (l lockstep) read(t *testing.T, body io.Reader, want []string) {
	t.Helper()
	br := bufio.NewReader(body)
	start := time.Now()
	for i := range want {
		event := ""
		for !strings.HasSuffix(event, "\n\n") {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("event %d: %v after %q", i, err, event)
			}
			event += line
		}
		if event != want[i] {
			t.Fatalf("event %d: %q", i, event)
		}
		if i < len(want)-1 {
			l <- struct{}{} // let the stand-in send the next one
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("events were held back: %s", d)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sseHandler(anthropicStream, nil))
	for _, tt := range []struct {
		name, body string
		token      string
		status     int
		errType    string
		msg        string
	}{
		{"denied model", `{"model":"claude-opus-4-1","max_tokens":10,"messages":[]}`, f.token, 403, "permission_error", "Warden: denied: "},
		{"model no rule allows", `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[]}`, f.token, 403, "permission_error", "no rule allows"},
		{"no price", `{"model":"claude-sonnet-4-5-unreleased","max_tokens":10,"messages":[]}`, f.token, 403, "permission_error", "has no price in Warden's price table"},
		{"bad token", messagesBody, "wdn_s_" + strings.Repeat("0", 64), 401, "authentication_error", "unknown, malformed or expired Warden token"},
		{"no token", messagesBody, "", 401, "authentication_error", "unknown, malformed or expired Warden token"},
		{"not JSON", `{"model":`, f.token, 400, "invalid_request_error", "not a JSON object"},
		{"no model", `{"max_tokens":10}`, f.token, 400, "invalid_request_error", "names no model"},
		{"too large", `{"model":"claude-sonnet-4-5","pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, f.token, 413, "invalid_request_error", "larger than 32 MB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", f.srv.URL+"/v1/messages", strings.NewReader(tt.body))
			if tt.token != "" {
				req.Header.Set("X-Api-Key", tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Type  string `json:"type"`
				Error struct{ Type, Message string }
			}
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tt.status || e.Type != "error" || e.Error.Type != tt.errType || !strings.Contains(e.Error.Message, tt.msg) {
				t.Errorf("HTTP %d %+v, want %d %s %q", resp.StatusCode, e, tt.status, tt.errType, tt.msg)
			}
		})
	}
	if n := f.up.calls(); n != 0 {
		t.Errorf("refused calls reached the upstream %d times", n)
	}
	// Every refusal is in the trail.
	if n := len(f.sink.Records()); n != 8 {
		t.Errorf("%d audit records for 8 refusals", n)
	}
}

func TestNonStreamed(t *testing.T) {
	t.Parallel()
	answer := `{"id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,"output_tokens":7}}`
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	})
	resp := f.post(t, "/v1/messages", strings.Replace(messagesBody, `"stream":true`, `"stream":false`, 1))
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != answer {
		t.Fatalf("answer %s", got)
	}
	_, u := usageRecord(t, f.sink)
	if u.InputTokens != 40 || u.OutputTokens != 7 || u.CacheReadTokens != 100 {
		t.Errorf("usage %+v", u)
	}
}

func TestUpstreamErrorsPassThrough(t *testing.T) {
	t.Parallel()
	body := `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(529)
		io.WriteString(w, body)
	})
	resp := f.post(t, "/v1/messages", messagesBody)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 529 || string(got) != body {
		t.Fatalf("HTTP %d %s", resp.StatusCode, got)
	}
	rec, u := usageRecord(t, f.sink)
	if rec.Status != "upstream 529" || u.CostUSD != pricing.Money(0).Decimal() {
		t.Errorf("usage record %+v %+v", rec, u)
	}
}

// openCall sends a Messages call whose answer the test reads, and the
// func that hangs it up.
func openCall(t *testing.T, base, token, body string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/messages", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return resp, cancel
}

// TestClientGoesAway: the agent disconnects mid-stream; the upstream call
// is cancelled and what was produced is charged.
func TestClientGoesAway(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{})
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range anthropicStream[:5] {
			io.WriteString(w, e)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(cancelled)
	})
	before := runtime.NumGoroutine()
	resp, cancel := openCall(t, f.srv.URL, f.token, messagesBody)
	br := bufio.NewReader(resp.Body)
	br.ReadString('\n') // the first line has arrived
	cancel()
	resp.Body.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call was not cancelled")
	}
	rec, u := usageRecord(t, f.sink)
	if rec.Status != "client disconnected" || u.InputTokens != 12 || u.CacheReadTokens != 9000 || u.OutputTokens < 1 || !u.Estimated || u.CostUSD == pricing.Money(0).Decimal() {
		t.Errorf("usage after a disconnect: %+v %+v", rec, u)
	}
	waitUntil(t, func() bool { return runtime.NumGoroutine() <= before+2 })
}

// TestClientLeavesAfterTheEnd: an agent that hangs up once it has read
// the end of the stream (message_stop) while the upstream holds the
// connection has had the whole answer: the call is ok and charged the
// provider's own count, not a cut stream's estimate.
func TestClientLeavesAfterTheEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range anthropicStream {
			io.WriteString(w, e)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the upstream has not ended the response yet
	})
	resp, cancel := openCall(t, f.srv.URL, f.token, messagesBody)
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended before message_stop: %v", err)
		}
		if strings.Contains(line, `"message_stop"`) {
			break
		}
	}
	cancel()
	resp.Body.Close()
	rec, u := usageRecord(t, f.sink)
	got := pricing.Tokens{Input: u.InputTokens, Output: u.OutputTokens, CacheRead: u.CacheReadTokens, CacheWrite5m: u.CacheWrite5mTokens, CacheWrite1h: u.CacheWrite1hTokens}
	if rec.Status != "ok" || u.Estimated || got != wantTokens {
		t.Errorf("usage after the agent left at the end: status %q, estimated %v, %+v; want ok, %+v", rec.Status, u.Estimated, got, wantTokens)
	}
}

func TestUpstreamHangs(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, func(g *Gateway) { g.Config.Upstreams["anthropic"].HeaderTimeout = 200 * time.Millisecond })
	resp := f.post(t, "/v1/messages", messagesBody)
	var e struct{ Error struct{ Message string } }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(e.Error.Message, "did not answer within 200ms") {
		t.Fatalf("HTTP %d %+v", resp.StatusCode, e)
	}
	if rec, _ := usageRecord(t, f.sink); rec.Status != "upstream timeout" {
		t.Errorf("usage record %+v", rec)
	}
}

func TestGarbageFromUpstream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5\n\n\x00\xff garbage\n\n")
	})
	resp := f.post(t, "/v1/messages", messagesBody)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if rec, _ := usageRecord(t, f.sink); rec.Status == "ok" {
		t.Errorf("a garbage stream recorded as ok: %+v", rec)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("condition not met within 5s (goroutines %d)", runtime.NumGoroutine()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConcurrentCallsCannotOvershoot: 200 calls at once against a budget
// that holds the worst case of 50. The stand-in answers nobody until every
// call has either reached it or been refused, so no settlement frees room
// early: exactly 50 pass, 150 are refused, and what is recorded as spent
// stays within the budget.
func TestConcurrentCallsCannotOvershoot(t *testing.T) {
	t.Parallel()
	const calls, fits = 200, 50
	body := `{"model":"claude-sonnet-4-5","max_tokens":1000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	price, _ := pricing.Default().Lookup("anthropic", "claude-sonnet-4-5")
	worst := price.WorstCase(int64(len(body)), 1000)
	budgetUSD := (worst*fits + worst/2).Dollars()

	var arrived sync.WaitGroup
	arrived.Add(calls)
	release := make(chan struct{})
	go func() { arrived.Wait(); close(release) }()
	var mu sync.Mutex
	reached := 0
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached++
		mu.Unlock()
		arrived.Done()
		<-release
		sseHandler(anthropicStream, nil)(w, r)
	}, func(g *Gateway) {
		p, err := policy.Load("p.yaml", []byte(testPolicy+fmt.Sprintf(`budgets:
  - {id: team, scope: project, period: day, usd: %v, notify: ops}
notifications:
  ops: {type: webhook, url: "https://hooks.example.com/w"}
`, budgetUSD)))
		if err != nil {
			t.Fatal(err)
		}
		g.Pipeline.Policy = policyload.Static(p)
		g.Pipeline.Budget = &pipeline.Budgets{Service: &budget.Service{Ledger: &budget.MemoryLedger{}}, Limiter: &budget.Limiter{},
			Policy: policyload.Static(p), Audit: g.Pipeline.Audit}
	})
	var ok sync.WaitGroup
	var nOK, nDenied, nOther int
	results := make(chan int, calls)
	for range calls {
		ok.Add(1)
		go func() {
			defer ok.Done()
			resp := f.post(t, "/v1/messages", body)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				arrived.Done() // refused: it never reached the stand-in
			}
			results <- resp.StatusCode
		}()
	}
	ok.Wait()
	close(results)
	for code := range results {
		switch code {
		case 200:
			nOK++
		case 403:
			nDenied++
		default:
			nOther++
		}
	}
	if nOK != fits || nDenied != calls-fits || nOther != 0 || reached != fits {
		t.Fatalf("%d passed, %d refused, %d other; %d reached the provider; want %d and %d", nOK, nDenied, nOther, reached, fits, calls-fits)
	}
	var spent pricing.Money
	for _, r := range f.sink.Records() {
		if r.Code == audit.LLMUsage {
			var u audit.Usage
			json.Unmarshal(r.Args, &u)
			spent += handCost(price, pricing.Tokens{Input: u.InputTokens, Output: u.OutputTokens, CacheRead: u.CacheReadTokens,
				CacheWrite5m: u.CacheWrite5mTokens, CacheWrite1h: u.CacheWrite1hTokens})
		}
	}
	if cap := pricing.USD(budgetUSD); spent > cap || spent == 0 {
		t.Fatalf("recorded spend %s against a budget of %s", spent, cap)
	}
}

// TestFaultsLeakNothing runs every fault one after another — malformed
// JSON, an oversized body, garbage and truncated streams, an upstream
// that hangs, a client that leaves mid-stream — and checks that each is
// recorded and that the goroutine count returns to where it started.
func TestFaultsLeakNothing(t *testing.T) {
	var mode string
	var mu sync.Mutex
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		m := mode
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch m {
		case "garbage":
			io.WriteString(w, "\x00\xffdata: {{{{\n\n")
		case "truncated":
			io.WriteString(w, strings.Join(anthropicStream[:4], "")[:300])
		case "hang":
			<-r.Context().Done()
		case "leave":
			io.WriteString(w, anthropicStream[0])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}, func(g *Gateway) {
		g.Transport = &http.Transport{}
		g.Config.Upstreams["anthropic"].HeaderTimeout = 300 * time.Millisecond
	})
	client := &http.Client{Transport: &http.Transport{}}
	settle := func() int {
		client.CloseIdleConnections()
		f.gw.Transport.(*http.Transport).CloseIdleConnections()
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	post := func(ctx context.Context, body string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+"/v1/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+f.token)
		return client.Do(req)
	}
	baseline := settle()
	for _, tt := range []struct {
		mode, body string
		leave      bool
		status     string // the recorded outcome
	}{
		{"", `{"model":`, false, ""},
		{"", `{"model":"claude-sonnet-4-5","x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, false, ""},
		{"garbage", messagesBody, false, "incomplete"},
		{"truncated", messagesBody, false, "incomplete"},
		{"hang", messagesBody, false, "upstream timeout"},
		{"leave", messagesBody, true, "client disconnected"},
	} {
		mu.Lock()
		mode = tt.mode
		mu.Unlock()
		before := len(f.sink.Records())
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := post(ctx, tt.body)
		if err != nil {
			t.Fatalf("%s: %v", tt.mode, err)
		}
		if tt.leave {
			bufio.NewReader(resp.Body).ReadString('\n')
		} else {
			io.Copy(io.Discard, resp.Body)
		}
		cancel()
		resp.Body.Close()
		want := audit.RequestRefused
		if tt.status != "" {
			want = audit.LLMUsage
		}
		var last audit.Record
		waitUntil(t, func() bool {
			recs := f.sink.Records()
			if len(recs) == before {
				return false
			}
			last = recs[len(recs)-1]
			return last.Code == want
		})
		if last.Status != tt.status {
			t.Errorf("fault %q recorded as %s %q, want %q", tt.mode, last.Code, last.Status, tt.status)
		}
	}
	waitUntil(t, func() bool { return settle() <= baseline })
}

// TestOpenAIFrontEnds: the Responses API (Codex) and Chat Completions,
// streamed, with the provider's key upstream and the usage in pricing's
// convention (cached tokens apart from input, reasoning within output).
func TestOpenAIFrontEnds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path, transcript string
		want             pricing.Tokens
	}{
		{"/v1/responses", "meter/testdata/responses/codex_turn.sse", pricing.Tokens{Input: 24000 - 20480, CacheRead: 20480, Output: 1500, Reasoning: 1024}},
		{"/v1/chat/completions", "meter/testdata/chat/usage.sse", pricing.Tokens{Input: 1234 - 1024, CacheRead: 1024, Output: 56}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			answer, err := os.ReadFile(tt.transcript)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write(answer)
			})
			body := `{"model":"gpt-5.1","stream":true,"max_output_tokens":4000,"input":"hi"}`
			req, _ := http.NewRequest("POST", f.srv.URL+tt.path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+f.token)
			req.Header.Set("Session-Id", "codex-session-7")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(got) != string(answer) {
				t.Fatalf("HTTP %d, %d bytes of %d", resp.StatusCode, len(got), len(answer))
			}
			if up := f.up.got[0]; up.Header.Get("Authorization") != "Bearer sk-openai-provider" || up.URL.Path != tt.path {
				t.Errorf("upstream %s with %q", up.URL.Path, up.Header.Get("Authorization"))
			}
			rec, u := usageRecord(t, f.sink)
			gotTokens := pricing.Tokens{Input: u.InputTokens, CacheRead: u.CacheReadTokens, Output: u.OutputTokens, Reasoning: u.ReasoningTokens}
			price, _ := pricing.Default().Lookup("openai", "gpt-5.1")
			if gotTokens != tt.want || rec.Status != "ok" || u.Estimated || u.CostUSD != price.Cost(tt.want).Decimal() {
				t.Errorf("usage %+v (%s), want %+v at %s", u, rec.Status, tt.want, price.Cost(tt.want).Decimal())
			}
			if d := f.sink.Records()[0]; d.ClientSession != "codex-session-7" || d.Resource != "openai/gpt-5.1" {
				t.Errorf("decision %+v", d)
			}
		})
	}
}
