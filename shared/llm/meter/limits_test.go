package meter

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/pricing"
)

// checkBounded fails if a stream meter holds more memory than its limits.
func checkBounded(t *testing.T, s *sse) {
	t.Helper()
	if cap(s.buf) > MaxEventBytes || cap(s.ring) > tailBytes || cap(s.name) > 2*maxNameBytes+8 {
		t.Fatalf("meter holds %d + %d + %d bytes", cap(s.buf), cap(s.ring), cap(s.name))
	}
}

func TestOversizedDelta(t *testing.T) {
	t.Parallel()
	data := readFile(t, "anthropic/claude_code_turn.sse")
	// A 3 MiB text delta before the text block ends.
	big := `event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"` +
		strings.Repeat("x", 3<<20) + `"}}` + "\n\n"
	at := bytes.Index(data, []byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}"))
	in := append(append(append([]byte{}, data[:at]...), big...), data[at:]...)
	var m AnthropicStream
	for chunk := range slicesChunk(in, 16<<10) {
		m.Write(chunk)
		checkBounded(t, &m.sse)
	}
	r := m.Result()
	want := transcripts[0].want
	want.Oversized = 1
	want.Bytes = int64(len(in))
	want.OutputBytes += int64(len(big)) - int64(len("event: content_block_delta\ndata: \n\n"))
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
	if cap(m.sse.buf) > keepBytes || m.sse.ring != nil {
		t.Errorf("after the big event the meter keeps %d + %d bytes", cap(m.sse.buf), cap(m.sse.ring))
	}

	// Cut inside the big event: it counts whole so far.
	var cut AnthropicStream
	cut.Write(in[:at+2<<20])
	if r := cut.Result(); r.Complete || r.Tokens.Output < (2<<20-200)/BytesPerToken {
		t.Errorf("cut in a big delta: %+v", r)
	}
}

func slicesChunk(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// TestOversizedCompleted: a response.completed over the limit (a long
// answer echoed whole) still yields its usage, read from the event's end.
func TestOversizedCompleted(t *testing.T) {
	t.Parallel()
	data := readFile(t, "responses/codex_turn.sse")
	at := bytes.Index(data, []byte("event: response.completed"))
	long := strings.Repeat(`I will run the tests.\n`, (MaxEventBytes/20)+10)
	completed := strings.Replace(string(data[at:]), `"text":"Running the pricing tests to see the failure."`, `"text":"`+long+`"`, 1)
	in := append(append([]byte{}, data[:at]...), completed...)
	for _, size := range []int{1 << 10, 100 << 10, len(in)} {
		var m ResponsesStream
		for chunk := range slicesChunk(in, size) {
			m.Write(chunk)
			checkBounded(t, &m.sse)
		}
		want := transcripts[4].want
		want.Oversized, want.Bytes = 1, int64(len(in))
		if got := m.Result(); !reflect.DeepEqual(got, want) {
			t.Errorf("chunks of %d:\ngot  %+v\nwant %+v", size, got, want)
		}
	}
}

// TestGarbage: bytes that are not SSE, or SSE that is not an answer,
// never panic, never read as complete, and never grow a meter past its
// limits.
func TestGarbage(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	random := make([]byte, 3<<20)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	inputs := map[string][]byte{
		"random bytes":      random,
		"one endless line":  bytes.Repeat([]byte("data: {\"type\":\"message_start\""), 100_000),
		"endless event":     []byte("event: message_start\n" + strings.Repeat("data: x\n", 300_000)),
		"endless name":      []byte("event: " + strings.Repeat("n", 2<<20) + "\ndata: {}\n\n"),
		"endless comment":   []byte(":" + strings.Repeat("c", 2<<20) + "\n\n"),
		"html error page":   []byte("<html><body><h1>502 Bad Gateway</h1></body></html>\n"),
		"json error body":   []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
		"usage not json":    []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":\n\nevent: message_stop\ndata: {}\n\n"),
		"done without data": []byte("data: [DONE]\n\n"),
		"stop alone":        []byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\nevent: response.completed\ndata: {}\n\n"),
	}
	for name, in := range inputs {
		for _, api := range []API{AnthropicMessages, OpenAIResponses, OpenAIChat} {
			m := New(api, true)
			for chunk := range slicesChunk(in, 32<<10) {
				m.Write(chunk)
			}
			r := m.Result()
			if r.Complete || !r.Estimated || r.Bytes != int64(len(in)) {
				t.Errorf("%s, api %d: %+v", name, api, r)
			}
			var s *sse
			switch m := m.(type) {
			case *AnthropicStream:
				s = &m.sse
			case *ResponsesStream:
				s = &m.sse
			case *ChatStream:
				s = &m.sse
			}
			checkBounded(t, s)
		}
	}
}

func TestMalformedUsage(t *testing.T) {
	t.Parallel()
	start := `event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"msg_1","model":"claude-haiku-4-5","usage":{"input_tokens":10,"output_tokens":1}}}` + "\n\n"
	stop := "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	delta := func(usage string) string {
		return `event: message_delta` + "\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":` + usage + "}\n\n"
	}
	for _, tt := range []struct {
		name      string
		in        string
		tokens    pricing.Tokens
		complete  bool
		malformed int
	}{
		{"whole", start + delta(`{"output_tokens":7}`) + stop, pricing.Tokens{Input: 10, Output: 7}, true, 0},
		{"cumulative, repeated: latest wins", start + delta(`{"output_tokens":7}`) + delta(`{"output_tokens":7}`) + delta(`{"output_tokens":9,"input_tokens":10}`) + stop,
			pricing.Tokens{Input: 10, Output: 9}, true, 0},
		{"null field keeps the last value", start + delta(`{"output_tokens":7,"input_tokens":null}`) + stop, pricing.Tokens{Input: 10, Output: 7}, true, 0},
		{"negative count refused", start + delta(`{"output_tokens":-5}`) + stop, pricing.Tokens{Input: 10, Output: 1}, false, 1},
		{"fractional count", start + delta(`{"output_tokens":7.5}`) + stop, pricing.Tokens{Input: 10, Output: 1}, false, 1},
		{"string count", start + delta(`{"output_tokens":"7"}`) + stop, pricing.Tokens{Input: 10, Output: 1}, false, 1},
		{"no usage in delta", start + "event: message_delta\ndata: {\"type\":\"message_delta\"}\n\n" + stop, pricing.Tokens{Input: 10, Output: 1}, false, 1},
		{"no message_delta", start + stop, pricing.Tokens{Input: 10, Output: 1}, false, 0},
		{"no message_start", delta(`{"output_tokens":7}`) + stop, pricing.Tokens{Output: 7}, false, 0},
	} {
		var m AnthropicStream
		m.Write([]byte(tt.in))
		r := m.Result()
		if r.Tokens != tt.tokens || r.Complete != tt.complete || r.Malformed != tt.malformed {
			t.Errorf("%s: tokens %+v complete %v malformed %d; want %+v %v %d", tt.name, r.Tokens, r.Complete, r.Malformed, tt.tokens, tt.complete, tt.malformed)
		}
	}
}

func TestOpenAIImpossibleCounts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in, cached, out, reasoning int64
		want                       pricing.Tokens
		ok                         bool
	}{
		{100, 40, 10, 4, pricing.Tokens{Input: 60, CacheRead: 40, Output: 10, Reasoning: 4}, true},
		{100, 100, 0, 0, pricing.Tokens{CacheRead: 100}, true},
		{100, 140, 10, 0, pricing.Tokens{Input: 140, Output: 10}, false},
		{100, 0, 10, 20, pricing.Tokens{Input: 100, Output: 20, Reasoning: 20}, false},
		{-1, 0, 10, 0, pricing.Tokens{Input: 0, Output: 10}, false},
	} {
		got, ok := openAITokens(tt.in, tt.cached, tt.out, tt.reasoning)
		if got != tt.want || ok != tt.ok {
			t.Errorf("openAITokens(%d, %d, %d, %d) = %+v, %v; want %+v, %v", tt.in, tt.cached, tt.out, tt.reasoning, got, ok, tt.want, tt.ok)
		}
	}
}

// TestBedrockEvents feeds the Anthropic transcript event by event, as
// Bedrock's event stream delivers it once unframed.
func TestBedrockEvents(t *testing.T) {
	t.Parallel()
	data := readFile(t, "anthropic/claude_code_turn.sse")
	var m AnthropicStream
	var n int64
	for _, block := range strings.Split(string(data), "\n\n") {
		for _, line := range strings.Split(block, "\n") {
			if payload, ok := strings.CutPrefix(line, "data: "); ok {
				m.Event([]byte(payload))
				n += int64(len(payload))
			}
		}
	}
	want := transcripts[0].want
	want.Bytes = n
	if got := m.Result(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	var big AnthropicStream
	big.Event([]byte(`{"type":"content_block_delta","delta":{"type":"text_delta","text":"` + strings.Repeat("y", 2<<20) + `"}}`))
	if r := big.Result(); r.Oversized != 1 || r.OutputBytes != 2<<20+70 {
		t.Errorf("big event: %+v", r)
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file  string
		read  func([]byte) (Result, error)
		api   API
		want  Result
		error string
	}{
		{"json/anthropic_message.json", AnthropicJSON, AnthropicMessages, Result{
			Model: "claude-sonnet-4-5-20250929", ID: "msg_01AbCdEfGhIjKlMnOpQrStUv",
			Tokens:   pricing.Tokens{Input: 5, CacheRead: 61_000, CacheWrite5m: 2_500, Output: 143},
			Complete: true, InputCounted: true, Stop: "tool_use", ServiceTier: "standard", WebSearches: 2, Bytes: 806,
		}, ""},
		{"json/anthropic_error.json", AnthropicJSON, AnthropicMessages, Result{
			Error: &ProviderError{Type: "overloaded_error", Message: "Overloaded"}, Bytes: 109,
		}, ""},
		{"json/responses.json", ResponsesJSON, OpenAIResponses, Result{
			Model: "gpt-5.1-codex-mini", ID: "resp_0a5f8c1b2e3d4f5a0168f1c2d3e4f5a6b7c8d9e0f1a2b3c4",
			Tokens:   pricing.Tokens{Input: 808, CacheRead: 8_192, Output: 700, Reasoning: 512},
			Complete: true, InputCounted: true, Stop: "completed", ServiceTier: "default", Bytes: 3658,
		}, ""},
		{"json/openai_error.json", ResponsesJSON, OpenAIResponses, Result{
			Error: &ProviderError{Type: "insufficient_quota", Message: "You exceeded your current quota, please check your plan and billing details."}, Bytes: 177,
		}, ""},
		{"json/chat.json", ChatJSON, OpenAIChat, Result{
			Model: "gpt-4.1-mini-2025-04-14", ID: "chatcmpl-D1",
			Tokens:   pricing.Tokens{Input: 812, Output: 3},
			Complete: true, InputCounted: true, Stop: "stop", ServiceTier: "default", Bytes: 786,
		}, ""},
		{"json/openai_error.json", ChatJSON, OpenAIChat, Result{
			Error: &ProviderError{Type: "insufficient_quota", Message: "You exceeded your current quota, please check your plan and billing details."}, Bytes: 177,
		}, ""},
	} {
		data := readFile(t, tt.file)
		got, err := tt.read(data)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v\ngot  %+v\nwant %+v", tt.file, err, got, tt.want)
		}
		// The same through the writer form, in pieces.
		m := New(tt.api, false)
		for chunk := range slicesChunk(data, 100) {
			m.Write(chunk)
		}
		if got := m.Result(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s as a body meter:\ngot  %+v\nwant %+v", tt.file, got, tt.want)
		}
	}
}

func TestJSONErrors(t *testing.T) {
	t.Parallel()
	big := []byte(`{"text":"` + strings.Repeat("z", MaxBodyBytes) + `"}`)
	readers := map[string]func([]byte) (Result, error){"anthropic": AnthropicJSON, "responses": ResponsesJSON, "chat": ChatJSON}
	what := map[string]string{"anthropic": "messages", "responses": "responses", "chat": "chat"}
	for name, read := range readers {
		for _, tt := range []struct {
			in   []byte
			want string
		}{
			{big, fmt.Sprintf("answer is %d bytes; the limit is %d", len(big), MaxBodyBytes)},
			{[]byte(`{"id":"x","usage":{"input_tokens":1`), "read " + what[name] + " answer: invalid JSON at byte 35"},
			{[]byte(`{"id":"x","usage":{"input_tokens":1}} trailing`), "read " + what[name] + " answer: invalid JSON at byte 39"},
			{[]byte(`{"id":"x","model":"m"}`), "read " + what[name] + " answer: no usage in the answer"},
			{[]byte(`{"id":7}`), "read " + what[name] + ` answer: field "id" has the wrong type`},
			{[]byte(``), "read " + what[name] + " answer: invalid JSON at byte 0"},
			{[]byte(`<html>502</html>`), "read " + what[name] + " answer: invalid JSON at byte 1"},
		} {
			r, err := read(tt.in)
			if err == nil || err.Error() != tt.want {
				t.Errorf("%s(%.40q) error = %v, want %q", name, tt.in, err, tt.want)
			}
			if r.Complete || !r.Estimated || r.Tokens.Output != estimateTokens(int64(len(tt.in))) {
				t.Errorf("%s(%.40q) = %+v, want the estimate from the body's size", name, tt.in, r)
			}
		}
	}
	m := New(OpenAIChat, false)
	for chunk := range slicesChunk(big, 1<<20) {
		m.Write(chunk)
	}
	if r := m.Result(); r.Oversized != 1 || r.Bytes != int64(len(big)) || r.Complete || m.(*bodyMeter).buf != nil {
		t.Errorf("big body: %+v", r)
	}
	unknown := New(API(99), false)
	unknown.Write([]byte(`{"usage":{"input_tokens":1,"output_tokens":1}}`))
	if r := unknown.Result(); r.Complete || !r.Estimated || r.Malformed != 1 || r.Tokens.Output != 16 {
		t.Errorf("unknown API: %+v", r)
	}
}

func TestProviderError(t *testing.T) {
	t.Parallel()
	if got := (&ProviderError{Type: "overloaded_error", Message: "Overloaded"}).Error(); got != "overloaded_error: Overloaded" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&ProviderError{Type: "failed"}).Error(); got != "failed" {
		t.Errorf("Error() = %q", got)
	}
	e := newProviderError("", strings.Repeat("m", 5000))
	if e.Type != "error" || len(e.Message) != maxMessageBytes {
		t.Errorf("newProviderError: %q, %d bytes", e.Type, len(e.Message))
	}
}
