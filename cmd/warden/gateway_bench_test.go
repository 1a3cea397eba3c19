package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkLLMCallSerial is one non-streamed model call at a time through
// warden serve, in process, over loopback to the scripted stand-in: the
// agent's token checked, the policy, the rate limit, the budget reserved,
// the fsynced decision record, the call, the budget settled and the
// fsynced usage record. For a CPU profile of the gateway:
//
//	go test -run '^$' -bench LLMCallSerial -cpuprofile cpu.out ./cmd/warden
func BenchmarkLLMCallSerial(b *testing.B) {
	// The upstream: one fixed Messages API answer, as the stand-in's.
	answer := []byte(`{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-5",` +
		`"content":[{"type":"text","text":"done"}],"stop_reason":"end_turn","stop_sequence":null,` +
		`"usage":{"input_tokens":250,"output_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}`)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	b.Cleanup(upstream.Close)
	l := gatewayServe(b, upstream.URL, `version: 1
rules:
  - {id: models, effect: allow, who: {project: bench}, action: llm:invoke, resource: "anthropic/claude-*"}
budgets:
  - {id: daily, scope: project, period: day, usd: 1000000}
rate_limits:
  - {id: calls, scope: session, action: "llm:invoke", requests: 100000000, per: 1m}
`)
	key := enroll(b, l, "bench")
	code, out, errOut := l.cli(b, "", "agent", "login", "--enroll-key", key, "--agent", "a", "--format", "json")
	var sess struct{ Token string }
	if code != 0 || json.Unmarshal([]byte(out), &sess) != nil {
		b.Fatalf("agent login: %d %s %s", code, out, errOut)
	}
	body := `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"` + strings.Repeat("x", 900) + `"}]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	call := func() (int, string) {
		req, _ := http.NewRequest("POST", l.endpoint+"/v1/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sess.Token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Anthropic-Version", "2023-06-01")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	// The policy file is polled: wait until it is in force.
	waitFor(b, func() bool { code, _ := call(); return code == http.StatusOK })
	for b.Loop() {
		if code, data := call(); code != http.StatusOK {
			b.Fatalf("%d %s", code, data)
		}
	}
}
