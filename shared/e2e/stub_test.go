package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// These tests drive the ModelStub over HTTP the way the clients do, without the clients.

type sseEvent struct {
	name string
	data map[string]any
}

// post sends body to the stub and returns the status and either the SSE events or the JSON body.
func post(t *testing.T, url string, body any) (int, []sseEvent, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		return resp.StatusCode, nil, m
	}
	var events []sseEvent
	var name string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
				t.Fatalf("decode event %s: %v", line, err)
			}
			if m["type"] != name {
				t.Errorf("event %q carries type %v", name, m["type"])
			}
			events = append(events, sseEvent{name: name, data: m})
		}
	}
	return resp.StatusCode, events, nil
}

func names(events []sseEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.name)
	}
	return out
}

// answer is what one response asked for, in either API.
type answer struct {
	callID  string
	command string
	text    string
}

func anthropicAnswer(t *testing.T, events []sseEvent, msg map[string]any) answer {
	t.Helper()
	var a answer
	var input string
	for _, e := range events {
		switch e.name {
		case "content_block_start":
			if cb := e.data["content_block"].(map[string]any); cb["type"] == "tool_use" {
				a.callID = cb["id"].(string)
			}
		case "content_block_delta":
			d := e.data["delta"].(map[string]any)
			if d["type"] == "input_json_delta" {
				input += d["partial_json"].(string)
			} else {
				a.text += d["text"].(string)
			}
		}
	}
	if msg != nil {
		for _, c := range msg["content"].([]any) {
			c := c.(map[string]any)
			if c["type"] == "tool_use" {
				a.callID = c["id"].(string)
				b, _ := json.Marshal(c["input"])
				input = string(b)
			} else {
				a.text += c["text"].(string)
			}
		}
	}
	if input != "" {
		var in struct{ Command string }
		if err := json.Unmarshal([]byte(input), &in); err != nil {
			t.Fatalf("tool input %s: %v", input, err)
		}
		a.command = in.Command
	}
	return a
}

func openAIAnswer(t *testing.T, events []sseEvent, resp map[string]any) answer {
	t.Helper()
	var items []any
	for _, e := range events {
		if e.name == "response.completed" {
			resp = e.data["response"].(map[string]any)
		}
	}
	items = resp["output"].([]any)
	if len(items) != 1 {
		t.Fatalf("output items = %v, want 1", items)
	}
	item := items[0].(map[string]any)
	var a answer
	switch item["type"] {
	case "function_call":
		a.callID = item["call_id"].(string)
		var args struct{ Cmd string }
		if err := json.Unmarshal([]byte(item["arguments"].(string)), &args); err != nil {
			t.Fatal(err)
		}
		a.command = args.Cmd
	case "message":
		a.text = item["content"].([]any)[0].(map[string]any)["text"].(string)
	default:
		t.Fatalf("output item type %v", item["type"])
	}
	return a
}

// turnRequest is one conversation request: how long the conversation is, and the call whose
// result it carries ("" for none; "prev" for the call of the previous answer).
type turnRequest struct {
	name    string
	side    bool // offers no shell tool
	stream  bool
	length  int
	result  string
	want    answer
	wantIdx int // Request.Step
}

func anthropicTurnBody(tr turnRequest, callID string) map[string]any {
	msgs := []any{map[string]any{"role": "user", "content": "do it"}}
	for len(msgs) < tr.length {
		msgs = append(msgs, map[string]any{"role": "assistant", "content": "…"})
	}
	if tr.result != "" {
		msgs = append(msgs[:len(msgs)-1], map[string]any{"role": "user", "content": []any{map[string]any{
			"type": "tool_result", "tool_use_id": callID, "content": []any{map[string]any{"type": "text", "text": "ok"}},
		}}})
	}
	tools := []any{map[string]any{"name": "Bash"}, map[string]any{"name": "Read"}}
	if tr.side {
		tools = nil
	}
	return map[string]any{"model": "claude-test", "stream": tr.stream, "messages": msgs, "tools": tools}
}

func openAITurnBody(tr turnRequest, callID string) map[string]any {
	input := []any{map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": "do it"}}}}
	for len(input) < tr.length {
		input = append(input, map[string]any{"type": "reasoning"})
	}
	if tr.result != "" {
		input = append(input[:len(input)-1], map[string]any{"type": "function_call_output", "call_id": callID, "output": "ok"})
	}
	tools := []any{map[string]any{"type": "function", "name": "exec_command"}, map[string]any{"type": "custom", "name": "apply_patch"}}
	if tr.side {
		tools = nil
	}
	return map[string]any{"model": "gpt-test", "stream": tr.stream, "input": input, "tools": tools}
}

func TestModelStubScript(t *testing.T) {
	t.Parallel()
	// One conversation, in order: each request is answered from the script, and the script only
	// moves on when the request carries the result of the call it answered last.
	turns := []turnRequest{
		{name: "first request", stream: true, length: 1, want: answer{command: "git push origin main"}, wantIdx: 0},
		{name: "retry without result", stream: false, length: 1, want: answer{command: "git push origin main"}, wantIdx: 0},
		{name: "side request", side: true, stream: true, length: 1, want: answer{text: sideText}, wantIdx: -1},
		{name: "result of the call", stream: true, length: 3, result: "prev", want: answer{command: "ls"}, wantIdx: 1},
		{name: "result of an unknown call", stream: true, length: 5, result: "call_unknown", want: answer{command: "ls"}, wantIdx: 1},
		{name: "result of the second call", stream: true, length: 5, result: "prev", want: answer{text: "done"}, wantIdx: 2},
		{name: "retry of the final request", stream: true, length: 5, result: "prev", want: answer{text: "done"}, wantIdx: 2},
		{name: "conversation goes on", stream: true, length: 7, want: answer{text: exhaustedText}, wantIdx: -1},
	}
	apis := []struct {
		api    API
		path   string
		body   func(turnRequest, string) map[string]any
		answer func(*testing.T, []sseEvent, map[string]any) answer
	}{
		{api: APIAnthropic, path: "/v1/messages?beta=true", body: anthropicTurnBody, answer: anthropicAnswer},
		{api: APIOpenAI, path: "/v1/responses", body: openAITurnBody, answer: openAIAnswer},
	}
	for _, api := range apis {
		t.Run(string(api.api), func(t *testing.T) {
			t.Parallel()
			stub := NewModelStub(t, []Step{Bash("git push origin main"), Bash("ls"), Say("done")})
			var prev string
			for i, tr := range turns {
				callID := tr.result
				if callID == "prev" {
					callID = prev
				}
				status, events, body := post(t, stub.URL()+api.path, api.body(tr, callID))
				if status != http.StatusOK {
					t.Fatalf("%s: status %d", tr.name, status)
				}
				got := api.answer(t, events, body)
				if got.command != "" && got.callID == "" {
					t.Errorf("%s: call without id", tr.name)
				}
				if got.callID != "" {
					prev = got.callID
				}
				got.callID = ""
				if got != tr.want {
					t.Errorf("%s: answer = %+v, want %+v", tr.name, got, tr.want)
				}
				rec := stub.Requests()[i]
				if rec.Step != tr.wantIdx || rec.Side != tr.side || rec.API != api.api || rec.Stream != tr.stream {
					t.Errorf("%s: recorded step %d side %v api %s stream %v, want %d %v %s %v",
						tr.name, rec.Step, rec.Side, rec.API, rec.Stream, tr.wantIdx, tr.side, api.api, tr.stream)
				}
			}
			results := stub.ToolResults()
			if len(results) != 2 || results[0].Command != "git push origin main" || results[1].Command != "ls" ||
				results[0].Output != "ok" || results[0].Step != 0 || results[1].Step != 1 {
				t.Errorf("tool results = %+v, want the two commands with output ok", results)
			}
		})
	}
}

func TestModelStubEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		path   string
		body   map[string]any
		script []Step
		want   []string
	}{
		{
			name:   "anthropic tool_use",
			path:   "/v1/messages?beta=true",
			body:   anthropicTurnBody(turnRequest{stream: true, length: 1}, ""),
			script: []Step{Bash("echo hi")},
			want: []string{"message_start", "ping", "content_block_start", "content_block_delta",
				"content_block_stop", "message_delta", "message_stop"},
		},
		{
			name:   "anthropic text",
			path:   "/v1/messages?beta=true",
			body:   anthropicTurnBody(turnRequest{stream: true, length: 1}, ""),
			script: []Step{Say("hi")},
			want: []string{"message_start", "ping", "content_block_start", "content_block_delta",
				"content_block_stop", "message_delta", "message_stop"},
		},
		{
			name:   "openai function_call",
			path:   "/v1/responses",
			body:   openAITurnBody(turnRequest{stream: true, length: 1}, ""),
			script: []Step{Bash("echo hi")},
			want: []string{"response.created", "response.in_progress", "response.output_item.added",
				"response.function_call_arguments.delta", "response.function_call_arguments.done",
				"response.output_item.done", "response.completed"},
		},
		{
			name:   "openai message",
			path:   "/v1/responses",
			body:   openAITurnBody(turnRequest{stream: true, length: 1}, ""),
			script: []Step{Say("hi")},
			want: []string{"response.created", "response.in_progress", "response.output_item.added",
				"response.content_part.added", "response.output_text.delta", "response.output_text.done",
				"response.content_part.done", "response.output_item.done", "response.completed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stub := NewModelStub(t, tc.script)
			_, events, _ := post(t, stub.URL()+tc.path, tc.body)
			if got := names(events); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events = %v, want %v", got, tc.want)
			}
			u := stub.Requests()[0].Usage
			if u.InputTokens+u.CacheCreationInputTokens <= 0 || u.OutputTokens <= 0 {
				t.Errorf("usage = %+v, want input and output tokens", u)
			}
		})
	}
}

func TestModelStubUsage(t *testing.T) {
	t.Parallel()
	stub := NewModelStub(t, []Step{Bash("echo hi"), Say("hi")})
	var id string
	var usages []map[string]any
	for i, tr := range []turnRequest{{stream: true, length: 1}, {stream: true, length: 3, result: "prev"}} {
		_, events, _ := post(t, stub.URL()+"/v1/messages", anthropicTurnBody(tr, id))
		id = anthropicAnswer(t, events, nil).callID
		start := events[0].data["message"].(map[string]any)["usage"].(map[string]any)
		delta := events[len(events)-2].data["usage"].(map[string]any)
		rec := stub.Requests()[i].Usage
		if start["output_tokens"].(float64) != 1 || int(delta["output_tokens"].(float64)) != rec.OutputTokens ||
			int(start["cache_read_input_tokens"].(float64)) != rec.CacheReadInputTokens ||
			int(start["input_tokens"].(float64)) != rec.InputTokens {
			t.Errorf("request %d: message_start usage %v, message_delta usage %v, recorded %+v", i, start, delta, rec)
		}
		usages = append(usages, start)
	}
	if usages[0]["cache_read_input_tokens"].(float64) != 0 || usages[1]["cache_read_input_tokens"].(float64) == 0 {
		t.Errorf("cache reads = %v then %v, want 0 then the first prompt", usages[0]["cache_read_input_tokens"], usages[1]["cache_read_input_tokens"])
	}

	_, events, _ := post(t, stub.URL()+"/v1/responses", openAITurnBody(turnRequest{stream: true, length: 5}, ""))
	u := events[len(events)-1].data["response"].(map[string]any)["usage"].(map[string]any)
	rec := stub.Requests()[2].Usage
	in := rec.InputTokens + rec.CacheCreationInputTokens + rec.CacheReadInputTokens
	if int(u["input_tokens"].(float64)) != in || int(u["total_tokens"].(float64)) != in+rec.OutputTokens ||
		int(u["input_tokens_details"].(map[string]any)["cached_tokens"].(float64)) != rec.CacheReadInputTokens {
		t.Errorf("response.completed usage %v, recorded %+v", u, rec)
	}
}

func TestModelStubOtherPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantKey    string
	}{
		{name: "count_tokens", path: "/v1/messages/count_tokens?beta=true", wantStatus: http.StatusOK, wantKey: "input_tokens"},
		{name: "unknown path", path: "/v1/models", wantStatus: http.StatusNotFound, wantKey: "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stub := NewModelStub(t, []Step{Say("hi")})
			status, _, body := post(t, stub.URL()+tc.path, anthropicTurnBody(turnRequest{length: 1}, ""))
			if status != tc.wantStatus || body[tc.wantKey] == nil {
				t.Errorf("status %d body %v, want %d with %q", status, body, tc.wantStatus, tc.wantKey)
			}
			if rec := stub.Requests()[0]; rec.Step != -1 {
				t.Errorf("recorded step %d, want -1", rec.Step)
			}
		})
	}
}
