package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Step is one turn of the scripted model: either a shell command it asks the client to run (Bash)
// or a final text answer (Say).
type Step struct {
	// Command is the shell command of a Bash step; empty for a Say step.
	Command string
	// Text is the answer of a Say step.
	Text string
}

// Bash is a Step in which the model asks the client to run command in its shell tool: a Bash
// tool_use for Claude Code, an exec_command function_call for Codex. The script moves past it
// only once a request carries the tool's result.
func Bash(command string) Step { return Step{Command: command} }

// Say is a Step in which the model answers text and ends its turn.
func Say(text string) Step { return Step{Text: text} }

func (s Step) isBash() bool { return s.Command != "" }

// String describes the step for logs and test failures.
func (s Step) String() string {
	if s.isBash() {
		return fmt.Sprintf("Bash(%q)", s.Command)
	}
	return fmt.Sprintf("Say(%q)", s.Text)
}

// exhaustedText is what the model says once the script has no step left.
const exhaustedText = "e2e model stub: the script has no step left"

// sideText answers requests that are not part of the scripted conversation.
const sideText = "e2e"

// API names the wire format of a request.
type API string

// The wire formats the stub speaks.
const (
	APIAnthropic API = "anthropic" // Anthropic Messages: /v1/messages
	APIOpenAI    API = "openai"    // OpenAI Responses: /v1/responses
)

// Usage is the token usage the stub reported for one response, in Anthropic's terms. For OpenAI,
// input_tokens is the sum of the three input fields and input_tokens_details.cached_tokens is
// CacheReadInputTokens.
type Usage struct {
	InputTokens              int
	CacheCreationInputTokens int
	CacheReadInputTokens     int
	OutputTokens             int
}

// Request is one HTTP request the stub received, with what it did about it.
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
	// API is the wire format, empty for paths the stub does not serve.
	API API
	// Side is true for requests outside the scripted conversation (no shell tool offered, such as
	// title generation, or count_tokens); they never move the script.
	Side bool
	// Step is the index of the script step answered, -1 if none (side requests, exhausted script,
	// errors).
	Step int
	// Stream is true if the answer was an SSE stream.
	Stream bool
	// Usage is the usage the answer reported.
	Usage Usage
}

// ToolResult is the result of a scripted shell command as the client sent it back to the model.
type ToolResult struct {
	// Step is the index of the Bash step that asked for the command.
	Step int
	// Command is that step's command.
	Command string
	// CallID is the tool_use id (Anthropic) or call_id (OpenAI) of the call.
	CallID string
	// Output is the text the client sent back: command output, or the reason it did not run.
	Output string
	// IsError is Anthropic's is_error flag; OpenAI has none.
	IsError bool
}

// ModelStub is a scripted stand-in for the Anthropic and OpenAI model APIs, listening on
// 127.0.0.1. Each conversation request answers the current step of the script; the script
// advances past a Bash step only when a request carries that call's result, and past a Say step
// only when the conversation has grown, so retried requests get the same answer again.
type ModelStub struct {
	srv    *httptest.Server
	script []Step
	nonce  string

	mu       sync.Mutex
	overload int // when not 0, every model call is answered with this status
	requests []Request
	pos      int // number of steps handed out; the current step is pos-1
	lastLen  int // conversation length of the request that got the current step
	cached   int // prompt tokens of the last conversation request, reported as cached next time
}

// NewModelStub starts a ModelStub that plays script, and stops it when the test ends.
func NewModelStub(t testing.TB, script []Step) *ModelStub {
	t.Helper()
	for i, st := range script {
		if st.Command == "" && st.Text == "" {
			t.Fatalf("e2e: script step %d is empty: use Bash or Say", i)
		}
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("e2e: model stub nonce: %v", err)
	}
	s := &ModelStub{script: script, nonce: hex.EncodeToString(b[:])}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: model stub listen: %v", err)
	}
	s.srv.Listener = l
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// Overload makes the stub answer every model call with status (429 or a
// 5xx) and the provider's error body, with retry-after-ms: 1 so that
// clients retry at once: a provider that is down or rate-limiting.
func (s *ModelStub) Overload(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overload = status
}

// SetScript replaces the script before the first request: for a script
// that names something known only once the stub runs (the stub's own URL
// in a Warden configuration, say).
func (s *ModelStub) SetScript(t testing.TB, script []Step) {
	t.Helper()
	for i, st := range script {
		if st.Command == "" && st.Text == "" {
			t.Fatalf("e2e: script step %d is empty: use Bash or Say", i)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) > 0 {
		t.Fatal("e2e: SetScript after the stub answered requests")
	}
	s.script = script
}

// URL is the stub's base URL, http://127.0.0.1:PORT, without a path: Claude Code's
// ANTHROPIC_BASE_URL. Codex's provider base_url is URL()+"/v1".
func (s *ModelStub) URL() string { return s.srv.URL }

// Requests returns a copy of every request received so far, in order.
func (s *ModelStub) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// ModelCalls returns the conversation requests received so far (Messages
// and Responses API calls), in order: the calls that reached the provider.
func (s *ModelStub) ModelCalls() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Path == "/v1/messages" || r.Path == "/v1/responses" {
			out = append(out, r)
		}
	}
	return out
}

// ToolResults returns the result of each scripted command that the client sent back, in script
// order, one per call (the latest request carrying it wins).
func (s *ModelStub) ToolResults() []ToolResult {
	reqs := s.Requests()
	byID := map[string]ToolResult{}
	for _, r := range reqs {
		var found []ToolResult
		switch r.API {
		case APIAnthropic:
			found = anthropicToolResults(r.Body)
		case APIOpenAI:
			found = openAIToolResults(r.Body)
		}
		for _, tr := range found {
			byID[tr.CallID] = tr
		}
	}
	var out []ToolResult
	for i, st := range s.script {
		if !st.isBash() {
			continue
		}
		for _, id := range []string{s.callID(APIAnthropic, i), s.callID(APIOpenAI, i)} {
			if tr, ok := byID[id]; ok {
				tr.Step, tr.Command = i, st.Command
				out = append(out, tr)
			}
		}
	}
	return out
}

// callID is the deterministic id of the tool call of step i, so that retries repeat it and
// results can be matched to steps.
func (s *ModelStub) callID(api API, i int) string {
	if api == APIOpenAI {
		return fmt.Sprintf("call_e2e%s%03d", s.nonce, i)
	}
	return fmt.Sprintf("toolu_e2e%s%03d", s.nonce, i)
}

func (s *ModelStub) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rec := Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.RawQuery,
		Header: r.Header.Clone(),
		Body:   body,
		Step:   -1,
	}
	if err != nil {
		s.record(rec)
		http.Error(w, fmt.Sprintf("read body: %v", err), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	overload := s.overload
	s.mu.Unlock()
	if overload != 0 && r.Method == http.MethodPost && (r.URL.Path == "/v1/messages" || r.URL.Path == "/v1/responses") {
		s.record(rec)
		w.Header().Set("Retry-After-Ms", "1")
		w.Header().Set("Retry-After", "0")
		typ := "rate_limit_error"
		if overload != http.StatusTooManyRequests {
			typ = "overloaded_error"
		}
		writeJSON(w, overload, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": "e2e model stub: overloaded"}})
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages":
		rec.API = APIAnthropic
		s.serveAnthropic(w, &rec)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages/count_tokens":
		rec.API, rec.Side = APIAnthropic, true
		s.serveCountTokens(w, &rec)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/responses":
		rec.API = APIOpenAI
		s.serveOpenAI(w, &rec)
	default:
		s.record(rec)
		writeJSON(w, http.StatusNotFound, map[string]any{
			"type":  "error",
			"error": map[string]any{"type": "not_found_error", "message": "e2e model stub: no route for " + r.Method + " " + r.URL.Path},
		})
	}
}

// record stores rec and returns its index, which also numbers the stub's message ids.
func (s *ModelStub) record(rec Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, rec)
	return len(s.requests) - 1
}

// turn is what the stub answers one request with.
type turn struct {
	step    int    // script index, -1 if none
	command string // shell command to request, if any
	callID  string
	text    string
}

// nextTurn decides the answer to a conversation request of length convLen that carries results
// for the call ids in results, and moves the script. The caller holds no lock.
func (s *ModelStub) nextTurn(api API, convLen int, results map[string]bool) turn {
	s.mu.Lock()
	defer s.mu.Unlock()
	advance := true
	if s.pos > 0 {
		cur := s.pos - 1
		if s.script[cur].isBash() {
			advance = results[s.callID(api, cur)]
		} else {
			advance = convLen > s.lastLen
		}
	}
	if advance {
		if s.pos == len(s.script) {
			return turn{step: -1, text: exhaustedText}
		}
		s.pos++
		s.lastLen = convLen
	}
	i := s.pos - 1
	st := s.script[i]
	if st.isBash() {
		return turn{step: i, command: st.Command, callID: s.callID(api, i)}
	}
	return turn{step: i, text: st.Text}
}

// usageFor makes realistic usage for a prompt of promptTokens and an answer of outputTokens. In
// the conversation, as with prompt caching, the previous conversation request's prompt is a cache
// read and most of the rest a cache write; side requests are all fresh input.
func (s *ModelStub) usageFor(promptTokens, outputTokens int, conversation bool) Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := Usage{InputTokens: promptTokens, OutputTokens: outputTokens}
	if conversation {
		cached := min(s.cached, promptTokens)
		fresh := promptTokens - cached
		u.CacheReadInputTokens = cached
		u.CacheCreationInputTokens = fresh * 9 / 10
		u.InputTokens = fresh - u.CacheCreationInputTokens
		s.cached = promptTokens
	}
	return u
}

// estimateTokens approximates a token count the way a tokenizer would land for English and JSON:
// about four bytes a token, at least one.
func estimateTokens(n int) int { return max(1, n/4) }

// flattenText joins the text of a tool result's content, which either API sends as a string or
// as a list of text parts.
func flattenText(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var parts []string
		for _, p := range c {
			if m, ok := p.(map[string]any); ok {
				if txt, ok := m["text"].(string); ok {
					parts = append(parts, txt)
				}
			}
		}
		return strings.Join(parts, "\n")
	default:
		return ""
	}
}
