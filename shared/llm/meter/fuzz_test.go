package meter

import (
	"reflect"
	"testing"
)

// fuzzStream checks, for any bytes: no panic; the result does not depend
// on how the bytes are chunked; and it is consistent with itself.
func fuzzStream(f *testing.F, api API, files []string, seeds ...string) {
	for _, name := range files {
		f.Add(readFile(f, name), uint16(17))
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint16(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole := meterAll(api, data)
		if got := meterAll(api, data, int(split)%(len(data)+1)); !reflect.DeepEqual(got, whole) {
			t.Fatalf("split at %d:\n%+v\nwhole:\n%+v", int(split)%(len(data)+1), got, whole)
		}
		m := New(api, true)
		for chunk := range slicesChunk(data, 1+int(split%13)) {
			m.Write(chunk)
		}
		if got := m.Result(); !reflect.DeepEqual(got, whole) {
			t.Fatalf("chunks of %d:\n%+v\nwhole:\n%+v", 1+split%13, got, whole)
		}
		tk := whole.Tokens
		switch {
		case tk.Input < 0 || tk.Output < 0 || tk.CacheRead < 0 || tk.CacheWrite5m < 0 || tk.CacheWrite1h < 0 || tk.Reasoning < 0:
			t.Fatalf("negative tokens %+v", tk)
		case whole.Complete && (whole.Estimated || !whole.InputCounted || whole.Error != nil || whole.Malformed > 0):
			t.Fatalf("complete but %+v", whole)
		case whole.Complete == whole.Estimated:
			t.Fatalf("a stream is either complete or estimated: %+v", whole)
		case whole.Bytes != int64(len(data)) || whole.OutputBytes < 0 || whole.OutputBytes > whole.Bytes:
			t.Fatalf("bytes %d, output bytes %d, of %d", whole.Bytes, whole.OutputBytes, len(data))
		case whole.Estimated && tk.Output < estimateTokens(whole.OutputBytes):
			t.Fatalf("estimate %d below the delta text's %d bytes", tk.Output, whole.OutputBytes)
		}
	})
}

func FuzzAnthropicStream(f *testing.F) {
	fuzzStream(f, AnthropicMessages,
		[]string{"anthropic/claude_code_turn.sse", "anthropic/overloaded.sse"},
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":3,\"cache_creation\":{\"ephemeral_5m_input_tokens\":1}}}}\n\n"+
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\\"b\"}}\n\n"+
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n"+
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		"data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1}}}\r\n\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"x\"}}\r\r",
	)
}

func FuzzResponsesStream(f *testing.F) {
	fuzzStream(f, OpenAIResponses,
		[]string{"responses/error_event.sse"},
		"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"model\":\"gpt-5\",\"usage\":null}}\n\n"+
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n"+
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":10,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":3,\"output_tokens_details\":{\"reasoning_tokens\":1}}}}\n\n",
		"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"m\"},\"usage\":null}}\n\n",
	)
}

func FuzzChatStream(f *testing.F) {
	fuzzStream(f, OpenAIChat,
		[]string{"chat/tool_calls.sse", "chat/error.sse"},
		"data: {\"id\":\"c\",\"model\":\"gpt-4.1\",\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}],\"usage\":null}\n\n"+
			"data: {\"id\":\"c\",\"model\":\"gpt-4.1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\ndata: [DONE]\n\n",
	)
}

// FuzzJSON: the non-streamed readers never panic, and a result they
// return without error is consistent.
func FuzzJSON(f *testing.F) {
	for _, name := range []string{"json/anthropic_message.json", "json/anthropic_error.json", "json/responses.json", "json/openai_error.json", "json/chat.json"} {
		f.Add(readFile(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, read := range []func([]byte) (Result, error){AnthropicJSON, ResponsesJSON, ChatJSON} {
			r, err := read(data)
			tk := r.Tokens
			if tk.Input < 0 || tk.Output < 0 || tk.CacheRead < 0 || tk.CacheWrite5m < 0 || tk.CacheWrite1h < 0 || tk.Reasoning < 0 {
				t.Fatalf("negative tokens %+v", tk)
			}
			if err != nil && (r.Complete || !r.Estimated) {
				t.Fatalf("error %v with %+v", err, r)
			}
			if r.Complete && (r.Estimated || r.Error != nil || !r.InputCounted) {
				t.Fatalf("complete but %+v", r)
			}
		}
	})
}
