package meter

import (
	"bytes"
	"testing"
)

// Benchmarks of the hot path: what metering costs per KiB of answer on
// top of forwarding it. Two ways the bytes arrive: one SSE event per write,
// as a proxy flushing each event sees them, and 4 KiB reads.
//
// Measured 2026-11-26 with
//
//	go test -run '^$' -bench . -count 6 -cpu 1 ./shared/llm/meter/
//
// on linux/amd64, 2 cores shared with other jobs; the fastest of the six
// runs (the others were up to 2x slower under the shared load):
//
//	AnthropicStream  events  17.2 us/op  2,313 ns/KiB  55 allocs  (Claude Code turn: 7.4 KiB, 52 events)
//	AnthropicStream  4KiB    17.3 us/op  2,325 ns/KiB
//	ResponsesStream  events  54.2 us/op  1,927 ns/KiB  99 allocs  (Codex turn: 28 KiB, 62 events)
//	ResponsesStream  4KiB    55.4 us/op  1,969 ns/KiB
//	ChatStream       events  16.8 us/op  1,791 ns/KiB  37 allocs  (9.4 KiB, 52 chunks)
//	ChatStream       4KiB    16.8 us/op  1,788 ns/KiB
//	Splitter         4KiB     5.3 us/op    190 ns/KiB  (SSE framing alone, 28 KiB)
//
// About 40% of each is encoding/json on the few events that carry usage
// or the model (message_start and message_delta; response.created and
// response.completed, which echo the ~12 KiB request); a delta event costs
// about 0.2 us. A whole call is metered in tens of microseconds.
func BenchmarkAnthropicStream(b *testing.B) {
	benchStream(b, AnthropicMessages, "anthropic/claude_code_turn.sse")
}

func BenchmarkResponsesStream(b *testing.B) {
	benchStream(b, OpenAIResponses, "responses/codex_turn.sse")
}

func BenchmarkChatStream(b *testing.B) {
	benchStream(b, OpenAIChat, "chat/usage.sse")
}

func benchStream(b *testing.B, api API, file string) {
	data := readFile(b, file)
	events := bytes.SplitAfter(data, []byte("\n\n"))
	var chunks [][]byte
	for c := range slicesChunk(data, 4<<10) {
		chunks = append(chunks, c)
	}
	for _, tt := range []struct {
		name  string
		parts [][]byte
	}{{"events", events}, {"4KiB", chunks}} {
		b.Run(tt.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				m := New(api, true)
				for _, p := range tt.parts {
					m.Write(p)
				}
				if !m.Result().Complete {
					b.Fatal("not complete")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(float64(len(data))/1024), "ns/KiB")
		})
	}
}

type nopHandler struct{}

func (nopHandler) event(*event) {}

// BenchmarkSplitter is the SSE framing alone.
func BenchmarkSplitter(b *testing.B) {
	data := readFile(b, "responses/codex_turn.sse")
	b.Run("4KiB", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var s sse
			for c := range slicesChunk(data, 4<<10) {
				s.write(c, nopHandler{})
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(float64(len(data))/1024), "ns/KiB")
	})
}
