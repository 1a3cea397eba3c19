// Package meter reads a model call's token usage out of the answer as the
// LLM gateway forwards it, so that every call is charged what it cost.
//
// The gateway writes each chunk of the upstream answer to the agent and,
// in the same loop, to a Meter (io.MultiWriter does it): a meter never
// fails a write, never holds bytes back and never delays the stream. When
// the answer has ended, or was cut, Result says what was consumed, in
// pricing.Tokens, ready for pricing.Price.Cost.
//
//	m := meter.New(meter.AnthropicMessages, req.Stream)
//	_, err := io.Copy(io.MultiWriter(w, m), upstream.Body)
//	r := m.Result() // r.Tokens, r.Complete, r.Estimated, r.Error …
//
// The readers:
//   - AnthropicStream: Messages API SSE (Claude Code; Bedrock's Anthropic
//     models through Event). AnthropicJSON: the non-streamed answer.
//   - ResponsesStream: OpenAI Responses API SSE (Codex). ResponsesJSON.
//   - ChatStream: OpenAI Chat Completions SSE. ChatJSON.
//
// # Tokens
//
// Every reader converts to pricing.Tokens' one convention: Input is the
// uncached prompt (OpenAI's input_tokens minus cached_tokens), CacheRead
// and the cache writes are the rest of the prompt, Output includes
// reasoning, Reasoning is the part of Output OpenAI says was reasoning.
// Anthropic's usage is cumulative: each field keeps the latest value sent
// (message_start, then each message_delta), never a sum.
//
// # Cut streams and estimates
//
// An answer is Complete when it ended as its API ends a whole answer
// (message_stop; response.completed or response.incomplete; data: [DONE]
// after the usage chunk) and every usage event in it was read. Otherwise
// Result is Estimated, by this rule:
//
//   - the input side is the provider's latest count when one arrived
//     (Anthropic sends it first, in message_start); OpenAI sends it only
//     at the end, so a cut OpenAI stream has none: InputCounted is false
//     and the gateway settles the input from its reservation;
//   - Output is the larger of the provider's latest output count and the
//     estimate from the text that passed: the raw bytes of the delta
//     strings (Anthropic text, thinking and tool-input JSON; OpenAI delta
//     events; Chat content, refusal and tool arguments, including an event
//     cut midway), plus every byte of an event too large to read that may
//     have carried output (a delta, or a type the meter does not know),
//     divided by BytesPerToken (3) and rounded up. That leans high on purpose;
//     it still misses what the agent never saw (Anthropic's thinking is
//     summarised; OpenAI's reasoning is hidden): a budget that needs a
//     hard bound can settle an estimated answer at its reservation.
//
// # Limits
//
// A meter's memory is bounded whatever arrives: an event's data is
// buffered up to MaxEventBytes (1 MiB); past that it is passed over, its
// bytes counted (Result.Oversized, Result.OutputBytes) and only its first
// 4 KiB and last 64 KiB kept, from which a usage object at the end of an
// oversized response.completed is still read. A non-streamed body is read
// up to MaxBodyBytes. Only the events that carry usage, errors or the
// model are parsed as JSON, after a look at their event name; the others
// are measured in place. Metering costs about 2 us per KiB of answer, a
// few tens of microseconds per call (numbers in bench_test.go).
package meter
