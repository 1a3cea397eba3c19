package llm

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/e2e"
)

// TestRealClaudeCodeThroughBedrock runs the real Claude Code against the
// gateway with the Bedrock stand-in (which verifies Warden's SigV4
// signature) behind it. In its Bedrock mode Claude Code streams its turn
// through /bedrock/model/<id>/invoke-with-response-stream and decodes the
// event stream Warden passes through unchanged, and Warden records the
// call's exact usage; a model the policy denies stops it with Warden's
// reason. In its usual mode (Messages API), the same model routed to
// Bedrock: Warden translates the request, and the event stream into SSE.
// (With ANTHROPIC_MODEL set, Claude Code 2.1.332 does not list the
// inference profiles first; TestBedrockInferenceProfiles covers that route.)
func TestRealClaudeCodeThroughBedrock(t *testing.T) {
	t.Parallel()
	turn := []string{
		`{"type":"message_start","message":{"id":"msg_bdrk_e2e","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello from Bedrock"}}`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":6}}`,
		`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":2095,"outputTokenCount":6,"invocationLatency":812,"firstByteLatency":301}}`,
	}
	var frames [][]byte
	for _, e := range turn {
		frames = append(frames, chunkFrame(t, e))
	}
	var mu sync.Mutex
	var paths []string
	f, b := newBedrockFixture(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
		switch {
		case r.Method == "GET" && r.URL.Path == "/inference-profiles":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"inferenceProfileSummaries":[{"inferenceProfileId":"`+bedrockModel+`","inferenceProfileName":"EU Claude Sonnet 4.5","status":"ACTIVE","type":"SYSTEM_DEFINED"}]}`)
		case strings.HasSuffix(r.URL.Path, "/invoke-with-response-stream"):
			eventStreamHandler(frames, nil)(w, r)
		default:
			w.Header().Set("X-Amzn-Errortype", "UnknownOperationException")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"not served by the stand-in"}`)
		}
	})
	// The setup the README gives for Claude Code's Bedrock mode.
	run := func(model string) e2e.Result {
		return e2e.RunClaude(t, e2e.ClaudeOptions{BaseURL: f.srv.URL, Token: "unused-in-bedrock-mode", Env: []string{
			"CLAUDE_CODE_USE_BEDROCK=1",
			"ANTHROPIC_BEDROCK_BASE_URL=" + f.srv.URL + "/bedrock",
			"AWS_BEARER_TOKEN_BEDROCK=" + f.token,
			"CLAUDE_CODE_SKIP_BEDROCK_AUTH=1",
			"AWS_REGION=" + testRegion,
			"ANTHROPIC_MODEL=" + model,
			"ANTHROPIC_SMALL_FAST_MODEL=" + model,
			"CLAUDE_CODE_MAX_RETRIES=0",
		}})
	}
	res := run(bedrockModel)
	mu.Lock()
	got := append([]string(nil), paths...)
	mu.Unlock()
	var out struct {
		Result  string `json:"result"`
		IsError bool   `json:"is_error"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil || res.ExitCode != 0 || out.IsError || out.Result != "Hello from Bedrock" {
		t.Fatalf("claude exit %d, result %+v (%v)\nstdout %s\nstderr %s\nBedrock saw %q", res.ExitCode, out, err, res.Stdout, res.Stderr, got)
	}
	if len(res.Egress) > 0 {
		t.Errorf("Claude Code tried to reach %v", res.Egress)
	}
	streamed := 0
	for _, p := range got {
		if p == "POST /model/"+bedrockModelPath+"/invoke-with-response-stream" {
			streamed++
		}
	}
	if streamed == 0 || b.calls() != len(got) {
		t.Errorf("Bedrock saw %q", got)
	}
	n := 0
	for _, r := range f.sink.Records() {
		if r.Code != audit.LLMUsage {
			continue
		}
		n++
		var u audit.Usage
		json.Unmarshal(r.Args, &u)
		if r.Status != "ok" || r.Resource != "bedrock/"+bedrockModel || u.InputTokens != 2095 || u.OutputTokens != 6 || u.Estimated {
			t.Errorf("usage %+v %+v", r, u)
		}
	}
	if n != streamed {
		t.Errorf("%d usage records for %d model calls", n, streamed)
	}

	// A model the policy denies: Claude Code stops at once with Warden's
	// reason, and nothing reaches Bedrock.
	before := b.calls()
	res = run("eu.anthropic.claude-opus-4-5-20251101-v1:0")
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil || res.ExitCode == 0 || !out.IsError || !strings.Contains(out.Result, "Warden: denied: ") {
		t.Errorf("denied model: claude exit %d, result %+v (%v)", res.ExitCode, out, err)
	}
	if b.calls() != before {
		t.Errorf("a denied call reached Bedrock")
	}

	// Claude Code in its usual mode (Messages API) with the model routed to
	// Bedrock: Warden translates the request and the event stream to SSE.
	before = b.calls()
	res = e2e.RunClaude(t, e2e.ClaudeOptions{BaseURL: f.srv.URL, Token: f.token, Env: []string{
		"ANTHROPIC_MODEL=" + bedrockModel, "ANTHROPIC_SMALL_FAST_MODEL=" + bedrockModel, "CLAUDE_CODE_MAX_RETRIES=0"}})
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil || res.ExitCode != 0 || out.IsError || out.Result != "Hello from Bedrock" {
		t.Fatalf("messages mode: claude exit %d, result %+v (%v)\nstdout %s\nstderr %s", res.ExitCode, out, err, res.Stdout, res.Stderr)
	}
	b.mu.Lock()
	last := b.bodies[len(b.bodies)-1]
	b.mu.Unlock()
	var sent map[string]json.RawMessage
	if json.Unmarshal([]byte(last), &sent) != nil || string(sent["anthropic_version"]) != `"bedrock-2023-05-31"` || sent["model"] != nil || sent["stream"] != nil ||
		!strings.Contains(string(sent["anthropic_beta"]), "claude-code-20250219") || b.calls() == before {
		t.Errorf("translated body %s", last)
	}
}
