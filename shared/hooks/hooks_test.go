package hooks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/pipeline"
	"github.com/wardenhq/warden/shared/policyload"
)

// samples returns every hook input captured from the real clients.
func samples(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json*")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				out = append(out, append([]byte(nil), line...))
			}
		}
	}
	return out
}

// TestSamplesDecode decodes every tool event the real clients sent, and
// refuses the events Warden does not handle.
func TestSamplesDecode(t *testing.T) {
	t.Parallel()
	tools := 0
	for _, s := range samples(t) {
		var probe struct {
			Event string `json:"hook_event_name"`
		}
		if err := json.Unmarshal(s, &probe); err != nil {
			t.Fatal(err)
		}
		in, err := Decode(s)
		if probe.Event != PreToolUse && probe.Event != PostToolUse {
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("%s event decoded: %v", probe.Event, err)
			}
			continue
		}
		tools++
		if err != nil {
			t.Fatalf("decode %s: %v", s, err)
		}
		req, _, err := in.Request()
		if err != nil || req.Action != "tool:Bash" || req.Resource != "git push origin main" || len(req.Commands) != 1 {
			t.Errorf("request from %s: %+v, %v", in.SessionID, req, err)
		}
	}
	if tools != 4 {
		t.Errorf("%d tool events in the samples, want 4", tools)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"not json", `{"hook_event_name":`, "bad hook input: not a JSON hook input: unexpected EOF"},
		{"wrong type", `{"hook_event_name":"PreToolUse","tool_name":7}`, "bad hook input: not a JSON hook input: json: cannot unmarshal number into Go struct field Input.tool_name of type string"},
		{"no event", `{"tool_name":"Bash","tool_input":{}}`, "bad hook input: hook_event_name is missing"},
		{"other event", `{"hook_event_name":"Stop"}`, `bad hook input: hook_event_name "Stop" is not handled; send PreToolUse and PostToolUse`},
		{"no tool", `{"hook_event_name":"PreToolUse","tool_input":{}}`, "bad hook input: tool_name is missing or too long"},
		{"input not object", `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"ls"}`, "bad hook input: tool_input must be a JSON object"},
		{"trailing", `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{}} {}`, "bad hook input: trailing data after the JSON object"},
		{"too large", `{"x":"` + strings.Repeat("a", MaxInputBytes) + `"}`, "bad hook input: input is 1048584 bytes; the limit is 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode([]byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Decode error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, tool, input, action, resource string
		commands                            int
	}{
		{"bash chain", "Bash", `{"command":"cd x && sudo git push origin main"}`, "tool:Bash", "cd x && sudo git push origin main", 2},
		{"codex argv", "exec_command", `{"cmd":["bash","-lc","git push origin main"]}`, "tool:Bash", "bash -lc 'git push origin main'", 2},
		{"relative edit", "Edit", `{"file_path":"src/../../../etc/passwd"}`, "tool:Edit", "/etc/passwd", 0},
		{"absolute write", "Write", `{"file_path":"/workspace/a//b.go"}`, "tool:Write", "/workspace/a/b.go", 0},
		{"grep defaults to cwd", "Grep", `{"pattern":"x"}`, "tool:Grep", "/workspace/app", 0},
		{"web fetch", "WebFetch", `{"url":"https://example.com/x"}`, "tool:WebFetch", "https://example.com/x", 0},
		{"mcp", "mcp__github__create_issue", `{"title":"t"}`, "tool:mcp__github__create_issue", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := &Input{HookEventName: PreToolUse, ToolName: tt.tool, ToolInput: json.RawMessage(tt.input), Cwd: "/workspace/app"}
			req, _, err := in.Request()
			if err != nil || req.Action != tt.action || req.Resource != tt.resource || len(req.Commands) != tt.commands {
				t.Errorf("got %q %q %d commands, %v", req.Action, req.Resource, len(req.Commands), err)
			}
		})
	}
	in := &Input{HookEventName: PreToolUse, ToolName: "Bash", ToolInput: json.RawMessage(`{"description":"x"}`)}
	if _, _, err := in.Request(); err == nil || err.Error() != "bad hook input: a shell tool call without tool_input.command" {
		t.Errorf("Bash without command: %v", err)
	}
}

// fixture is a pipeline over memory stores and the hook handler in front.
type fixture struct {
	ids   *identity.Service
	sink  *audit.MemorySink
	srv   *httptest.Server
	token string
	sess  identity.Session
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	p, err := policy.Load("p.yaml", []byte(`version: 1
rules:
  - {id: shell, effect: allow, action: tool:Bash, command: "*"}
  - {id: no-main, effect: approve, action: tool:Bash, command: "git push * main"}
  - {id: no-wipe, effect: deny, action: tool:Bash, command: "rm -rf /*"}
approvers:
  g: {rules: [no-main]}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ids: identity.NewService(identity.NewMemoryStore(), nil), sink: &audit.MemorySink{}}
	key, err := f.ids.CreateProject(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	f.sess, f.token, err = f.ids.Login(ctx, key, "claude", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	pipe := &pipeline.Pipeline{Auth: f.ids, Policy: policyload.Static(p), Approvals: pipeline.NoApprovals{}, Budget: pipeline.NoBudget{}, Audit: f.sink}
	h := &Handler{Pipeline: pipe}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /pre", h.PreToolUse)
	mux.HandleFunc("POST /post", h.PostToolUse)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) post(t *testing.T, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, strings.TrimSpace(b.String())
}

func pre(command string) string {
	b, _ := json.Marshal(map[string]any{"session_id": "cc-1", "hook_event_name": "PreToolUse", "tool_name": "Bash",
		"tool_input": map[string]any{"command": command}, "tool_use_id": "toolu_1", "cwd": "/w"})
	return string(b)
}

func TestPreToolUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, token, body string
		status            int
		want              string
		code              audit.Code
	}{
		{"allowed", f.token, pre("git push origin feature/x"), 200,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow","permissionDecisionReason":"Warden: allowed by rule \"shell\" (p.yaml:3:5)"}}`,
			audit.DecisionAllow},
		{"approval refused until approvals exist", f.token, pre("git push origin main"), 200,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"Warden: approval required: needs approval by rule \"no-main\" (p.yaml:4:5); this Warden has no approval workflow yet, so the request is refused"}}`,
			audit.DecisionApproval},
		{"denied", f.token, pre("ls; rm -rf /"), 200,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"Warden: denied: denied by rule \"no-wipe\" (p.yaml:5:5)"}}`,
			audit.DecisionDeny},
		{"no token", "", pre("ls"), 401,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"Warden: unknown, malformed or expired Warden token"},"error":"unknown, malformed or expired Warden token"}`,
			audit.RequestRefused},
		{"malformed", f.token, `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":[]}`, 400,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"Warden refused the hook call: bad hook input: tool_input must be a JSON object"},"error":"bad hook input: tool_input must be a JSON object"}`,
			audit.RequestRefused},
		{"tool input of the wrong shape", f.token, `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":1}}`, 400,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"Warden refused the hook call: bad hook input: a shell tool call without tool_input.command"},"error":"bad hook input: a shell tool call without tool_input.command"}`,
			audit.RequestRefused},
		{"post body on the pre endpoint", f.token, strings.Replace(pre("ls"), "PreToolUse", "PostToolUse", 1), 400,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"Warden refused the hook call: bad hook input: this endpoint takes PreToolUse, got PostToolUse"},"error":"bad hook input: this endpoint takes PreToolUse, got PostToolUse"}`,
			audit.RequestRefused},
	}
	for _, tt := range tests {
		status, body := f.post(t, "/pre", tt.token, tt.body)
		if status != tt.status || body != tt.want {
			t.Errorf("%s: HTTP %d\n%s\nwant HTTP %d\n%s", tt.name, status, body, tt.status, tt.want)
		}
		recs := f.sink.Records()
		if last := recs[len(recs)-1]; last.Code != tt.code {
			t.Errorf("%s: recorded %s, want %s", tt.name, last.Code, tt.code)
		}
	}
	recs := f.sink.Records()
	if r := recs[0]; r.Session != f.sess.ID || r.ClientSession != "cc-1" || r.Ref != "toolu_1" || r.Rule != "shell" || r.PolicyVersion == "" {
		t.Errorf("decision record: %+v", r)
	}
	if r := recs[4]; r.Session != f.sess.ID {
		t.Errorf("malformed input with a valid token is not attributed: %+v", r)
	}

	// The kill switch: the next call is refused with the reason.
	if err := f.ids.KillSession(context.Background(), f.sess.ID, "admin:bob", "runaway loop"); err != nil {
		t.Fatal(err)
	}
	status, body := f.post(t, "/pre", f.token, pre("ls"))
	if status != 403 || !strings.Contains(body, "was killed by admin:bob: runaway loop") {
		t.Errorf("killed session: HTTP %d %s", status, body)
	}
}

func TestPreToolUseFailsClosedWithoutAudit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.sink.Fail = errors.New("disk full")
	status, body := f.post(t, "/pre", f.token, pre("ls"))
	if status != 503 || !strings.Contains(body, `"permissionDecision":"deny"`) || !strings.Contains(body, "audit trail is unavailable") {
		t.Errorf("HTTP %d %s", status, body)
	}
}

func TestPostToolUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := `{"session_id":"cc-1","hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"git push origin feature/x"},` +
		`"tool_response":{"stdout":"pushed with token=abc123secret","stderr":"","interrupted":false},"tool_use_id":"toolu_9","duration_ms":88}`
	if status, out := f.post(t, "/post", f.token, body); status != 200 || out != "{}" {
		t.Fatalf("HTTP %d %s", status, out)
	}
	recs := f.sink.Records()
	r := recs[len(recs)-1]
	if r.Code != audit.ToolOutcome || r.Ref != "toolu_9" || r.DurationMS != 88 || r.Status != "completed" || r.Session != f.sess.ID {
		t.Errorf("outcome record: %+v", r)
	}
	if strings.Contains(string(r.Args), "abc123secret") {
		t.Errorf("secret in the audit record: %s", r.Args)
	}
	if status, _ := f.post(t, "/post", "wdn_s_x_y", body); status != 401 {
		t.Errorf("bad token: HTTP %d", status)
	}
}
