package meter

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/pricing"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// apiOf is the API of a transcript, by its directory.
func apiOf(t testing.TB, name string) API {
	switch filepath.Dir(name) {
	case "anthropic":
		return AnthropicMessages
	case "responses":
		return OpenAIResponses
	case "chat":
		return OpenAIChat
	}
	t.Fatalf("no API for %s", name)
	return 0
}

// meterAll writes data to a new stream meter in chunks of the given sizes
// (the rest in one chunk) and returns its result.
func meterAll(api API, data []byte, sizes ...int) Result {
	m := New(api, true)
	for _, n := range sizes {
		n = min(n, len(data))
		m.Write(data[:n])
		data = data[n:]
	}
	m.Write(data)
	return m.Result()
}

type transcript struct {
	file string
	want Result
}

// transcripts are realistic answers as the APIs send them, with what must
// be read from them.
var transcripts = []transcript{
	{"anthropic/claude_code_turn.sse", Result{
		Model: "claude-sonnet-4-5-20250929", ID: "msg_01XFDUDYJgAACzvnptvVoYEL",
		Tokens:   pricing.Tokens{Input: 3, CacheRead: 45_000, CacheWrite5m: 1_200, CacheWrite1h: 18_000, Output: 850},
		Complete: true, InputCounted: true, Stop: "tool_use", ServiceTier: "standard",
		Bytes: 7603, OutputBytes: 598,
	}},
	{"anthropic/cut_in_tool_input.sse", Result{
		Model: "claude-sonnet-4-5-20250929", ID: "msg_01XFDUDYJgAACzvnptvVoYEL",
		// Output: 476 bytes of thinking, text and tool input / 3, above message_start's 1.
		Tokens:    pricing.Tokens{Input: 3, CacheRead: 45_000, CacheWrite5m: 1_200, CacheWrite1h: 18_000, Output: 159},
		Estimated: true, InputCounted: true, ServiceTier: "standard",
		Bytes: 5544, OutputBytes: 476,
	}},
	{"anthropic/overloaded.sse", Result{
		Model: "claude-sonnet-4-5-20250929", ID: "msg_01XFDUDYJgAACzvnptvVoYEL",
		Tokens:    pricing.Tokens{Input: 3, CacheRead: 45_000, CacheWrite5m: 1_200, CacheWrite1h: 18_000, Output: 157},
		Estimated: true, InputCounted: true, ServiceTier: "standard",
		Error: &ProviderError{Type: "overloaded_error", Message: "Overloaded"},
		Bytes: 4462, OutputBytes: 469,
	}},
	{"anthropic/cache_unsplit.sse", Result{
		Model: "claude-haiku-4-5-20251001", ID: "msg_bdrk_01Gx8",
		// 4096 cache writes with no split by lifetime: counted as 1 h.
		Tokens:   pricing.Tokens{Input: 2_113, CacheWrite1h: 4_096, Output: 96},
		Complete: true, InputCounted: true, Stop: "tool_use", CacheTTLAssumed: true,
		Bytes: 6378, OutputBytes: 598,
	}},
	{"responses/codex_turn.sse", Result{
		Model: "gpt-5-codex", ID: "resp_0a5f8c1b2e3d4f5a0168f1c2d3e4f5a6b7c8d9e0f1a2b3c4",
		// input_tokens 24000 with 20480 cached; output 1500 with 1024 reasoning.
		Tokens:   pricing.Tokens{Input: 3_520, CacheRead: 20_480, Output: 1_500, Reasoning: 1_024},
		Complete: true, InputCounted: true, Stop: "completed", ServiceTier: "default",
		Bytes: 28823, OutputBytes: 241,
	}},
	{"responses/cut_in_arguments.sse", Result{
		Model: "gpt-5-codex", ID: "resp_0a5f8c1b2e3d4f5a0168f1c2d3e4f5a6b7c8d9e0f1a2b3c4",
		Tokens:    pricing.Tokens{Output: 81},
		Estimated: true, ServiceTier: "auto",
		Bytes: 23465, OutputBytes: 241,
	}},
	{"responses/incomplete.sse", Result{
		Model: "gpt-5-codex", ID: "resp_0a5f8c1b2e3d4f5a0168f1c2d3e4f5a6b7c8d9e0f1a2b3c4",
		Tokens:   pricing.Tokens{Input: 31_000, Output: 4_096, Reasoning: 3_900},
		Complete: true, InputCounted: true, Stop: "incomplete: max_output_tokens", ServiceTier: "default",
		Bytes: 29310, OutputBytes: 241,
	}},
	{"responses/failed.sse", Result{
		Model: "gpt-5-codex", ID: "resp_0a5f8c1b2e3d4f5a0168f1c2d3e4f5a6b7c8d9e0f1a2b3c4",
		Tokens:    pricing.Tokens{Output: 81},
		Estimated: true, Stop: "failed", ServiceTier: "default",
		Error: &ProviderError{Type: "server_error", Message: "The model failed to generate a response."},
		Bytes: 28722, OutputBytes: 241,
	}},
	{"responses/error_event.sse", Result{
		Model: "gpt-5-codex", ID: "resp_0a5f8c1b2e3d4f5a0168f1c2d3e4f5a6b7c8d9e0f1a2b3c4",
		Tokens:    pricing.Tokens{Output: 52},
		Estimated: true, ServiceTier: "auto",
		Error: &ProviderError{Type: "rate_limit_exceeded", Message: "Rate limit reached for gpt-5-codex on tokens per min (TPM)."},
		Bytes: 19204, OutputBytes: 155,
	}},
	{"chat/usage.sse", Result{
		Model: "gpt-4.1-2025-04-14", ID: "chatcmpl-CZx8QpL3vT9aW2nR5mK7jH1fD4sE6",
		Tokens:   pricing.Tokens{Input: 210, CacheRead: 1_024, Output: 56},
		Complete: true, InputCounted: true, Stop: "stop", ServiceTier: "default",
		Bytes: 9600, OutputBytes: 171,
	}},
	{"chat/no_usage.sse", Result{
		Model: "gpt-4.1-2025-04-14", ID: "chatcmpl-CZx8QpL3vT9aW2nR5mK7jH1fD4sE6",
		Tokens:    pricing.Tokens{Output: 57},
		Estimated: true, Stop: "stop", ServiceTier: "default",
		Bytes: 9119, OutputBytes: 171,
	}},
	{"chat/tool_calls.sse", Result{
		Model: "o4-mini-2025-04-16", ID: "chatcmpl-CZy1",
		Tokens:   pricing.Tokens{Input: 218, CacheRead: 4_992, Output: 348, Reasoning: 320},
		Complete: true, InputCounted: true, Stop: "tool_calls", ServiceTier: "default",
		Bytes: 3412, OutputBytes: 33,
	}},
	{"chat/error.sse", Result{
		Model: "o4-mini-2025-04-16", ID: "chatcmpl-CZy1",
		Tokens:    pricing.Tokens{Output: 4},
		Estimated: true, ServiceTier: "default",
		Error: &ProviderError{Type: "server_error", Message: "The server had an error while processing your request. Sorry about that!"},
		Bytes: 1231, OutputBytes: 12,
	}},
}

func TestTranscripts(t *testing.T) {
	t.Parallel()
	for _, tt := range transcripts {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			got := meterAll(apiOf(t, tt.file), readFile(t, tt.file))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestOutputBytesCrossCheck computes each transcript's delta text another
// way, by decoding every event with encoding/json, to check the scanner
// that measures it in place.
func TestOutputBytesCrossCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range transcripts {
		data := readFile(t, tt.file)
		var want int64
		for _, block := range strings.Split(string(data), "\n\n") {
			var name, payload string
			for _, line := range strings.Split(block, "\n") {
				if v, ok := strings.CutPrefix(line, "event: "); ok {
					name = v
				}
				if v, ok := strings.CutPrefix(line, "data: "); ok {
					payload = v
				}
			}
			var v struct {
				Delta   json.RawMessage `json:"delta"`
				Choices []struct {
					Delta struct {
						Content   *string `json:"content"`
						Refusal   *string `json:"refusal"`
						ToolCalls []struct {
							Function struct {
								Arguments *string `json:"arguments"`
							} `json:"function"`
						} `json:"tool_calls"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if payload == "" || payload == "[DONE]" || json.Unmarshal([]byte(payload), &v) != nil {
				continue
			}
			switch {
			case name == "content_block_delta":
				var d map[string]any
				json.Unmarshal(v.Delta, &d)
				for _, k := range []string{"text", "thinking", "partial_json"} {
					if s, ok := d[k].(string); ok {
						want += escapedLen(s)
					}
				}
			case strings.HasSuffix(name, ".delta"):
				var s string
				json.Unmarshal(v.Delta, &s)
				want += escapedLen(s)
			case name == "":
				for _, c := range v.Choices {
					for _, p := range []*string{c.Delta.Content, c.Delta.Refusal} {
						if p != nil {
							want += escapedLen(*p)
						}
					}
					for _, tc := range c.Delta.ToolCalls {
						if p := tc.Function.Arguments; p != nil {
							want += escapedLen(*p)
						}
					}
				}
			}
		}
		if want != tt.want.OutputBytes {
			t.Errorf("%s: decoded delta text is %d bytes, the table says %d", tt.file, want, tt.want.OutputBytes)
		}
	}
}

// escapedLen is the length of s as the providers write it inside a JSON
// string: escaped, not HTML-escaped.
func escapedLen(s string) int64 {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return int64(b.Len() - 3) // the quotes and the encoder's newline
}

// TestChunking splits every transcript at every byte, and writes it a
// byte at a time: the result never depends on how the bytes arrive.
func TestChunking(t *testing.T) {
	t.Parallel()
	for _, tt := range transcripts {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			api, data := apiOf(t, tt.file), readFile(t, tt.file)
			for i := 0; i <= len(data); i++ {
				if got := meterAll(api, data, i); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("split at %d:\ngot  %+v\nwant %+v", i, got, tt.want)
				}
			}
			m := New(api, true)
			for i := range data {
				m.Write(data[i : i+1])
			}
			if got := m.Result(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("byte by byte:\ngot  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestPrefixes cuts every complete transcript at every byte: a cut answer
// is never complete, and its output estimate never falls as more arrives.
func TestPrefixes(t *testing.T) {
	t.Parallel()
	for _, tt := range transcripts {
		if !tt.want.Complete {
			continue
		}
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			api, data := apiOf(t, tt.file), readFile(t, tt.file)
			m := New(api, true)
			var last Result
			for i := range data {
				m.Write(data[i : i+1])
				r := m.Result()
				if i < len(data)-1 && (r.Complete || !r.Estimated) {
					t.Fatalf("cut after %d of %d bytes: complete %v, estimated %v", i+1, len(data), r.Complete, r.Estimated)
				}
				if r.OutputBytes < last.OutputBytes || (i < len(data)-1 && r.Tokens.Output < last.Tokens.Output) {
					t.Fatalf("cut after %d bytes: output %d (%d bytes), before %d (%d bytes)", i+1, r.Tokens.Output, r.OutputBytes, last.Tokens.Output, last.OutputBytes)
				}
				last = r
			}
			if !last.Complete {
				t.Fatal("whole answer not complete")
			}
		})
	}
}

// TestLineEndings: CRLF and CR line ends, and Anthropic events without
// their event: lines, read the same.
func TestLineEndings(t *testing.T) {
	t.Parallel()
	for _, tt := range transcripts {
		data := readFile(t, tt.file)
		variants := map[string][]byte{
			"crlf": bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")),
			"cr":   bytes.ReplaceAll(data, []byte("\n"), []byte("\r")),
		}
		if filepath.Dir(tt.file) == "anthropic" {
			var b bytes.Buffer
			for _, line := range strings.SplitAfter(string(data), "\n") {
				if !strings.HasPrefix(line, "event:") {
					b.WriteString(line)
				}
			}
			variants["no event lines"] = b.Bytes()
		}
		for name, v := range variants {
			for _, split := range []int{0, len(v) / 3, len(v) / 2} {
				got := meterAll(apiOf(t, tt.file), v, split)
				want := tt.want
				want.Bytes = int64(len(v))
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s, %s, split at %d:\ngot  %+v\nwant %+v", tt.file, name, split, got, want)
				}
			}
		}
	}
}
