// Package gatewaybench holds the pieces of a benchmark of Warden's LLM
// gateway against proxies in front of the same upstream:
//
//   - StandIn, an Anthropic Messages API upstream whose answers are fixed
//     bytes (a 1 KB JSON message, or an SSE stream with a pause between
//     events), so that what a client gets through a proxy can be compared
//     with what the upstream sent, byte for byte;
//   - RequestBody, a Messages request of an exact size;
//   - Checker, an http.RoundTripper that times the first byte of each
//     answer and compares the answer with the expected bytes as it is read;
//   - Arrivals, when each SSE event of a body arrived, to show that a proxy
//     forwards events as they come rather than in batches;
//   - Concurrent, many long streams held open at once.
//
// The load itself is driven by github.com/wardenhq/warden/bench/hookbench.
package gatewaybench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request headers by which a caller shapes a streamed answer of the
// stand-in. Proxies forward them unchanged.
const (
	// HeaderDelay is the pause between two events, as a Go duration.
	HeaderDelay = "X-Stand-In-Delay"
	// HeaderDeltas is the number of content_block_delta events.
	HeaderDeltas = "X-Stand-In-Deltas"
)

// Model is the model the stand-in answers as, and the benchmark asks for.
const (
	Model       = "claude-sonnet-4-5"
	answerModel = "claude-sonnet-4-5-20250929"
)

// Usage is the usage every answer of the stand-in reports, streamed or
// not: what Warden must record for each call.
var Usage = struct {
	Input, Output, CacheRead, CacheWrite int64
}{Input: 270, Output: 190, CacheRead: 8000, CacheWrite: 1200}

// MaxDeltas bounds the content_block_delta events of one streamed answer.
const MaxDeltas = 10_000

// StandIn serves POST /v1/messages as the Anthropic Messages API does,
// always with the same answer: Message when the request body does not ask
// for a stream, Stream otherwise. It reads the whole request body first.
type StandIn struct {
	// Key, if set, is the only x-api-key accepted; a request with another
	// is refused with 401. A request without x-api-key (a direct call, or
	// one through a proxy that does not swap keys) is accepted.
	Key string
	// Deltas and Delay shape streamed answers when the request does not
	// (HeaderDeltas, HeaderDelay).
	Deltas int
	Delay  time.Duration
}

// ServeHTTP implements http.Handler.
func (s *StandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		apiError(w, http.StatusNotFound, "not_found_error", "the stand-in serves POST /v1/messages only")
		return
	}
	if k := r.Header.Get("X-Api-Key"); k != "" && s.Key != "" && k != s.Key {
		apiError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "could not read the request body")
		return
	}
	if !bytes.Contains(body, []byte(`"stream":true`)) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(message)))
		w.Header().Set("Request-Id", "req_stand_in")
		_, _ = w.Write(message)
		return
	}
	deltas, delay := s.Deltas, s.Delay
	if v := r.Header.Get(HeaderDeltas); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxDeltas {
			apiError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("%s %q: want 0 to %d", HeaderDeltas, v, MaxDeltas))
			return
		}
		deltas = n
	}
	if v := r.Header.Get(HeaderDelay); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > time.Minute {
			apiError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("%s %q: want a duration up to 1m", HeaderDelay, v))
			return
		}
		delay = d
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Request-Id", "req_stand_in")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	t := time.NewTimer(0)
	<-t.C
	for i, e := range Stream(deltas) {
		if i > 0 && delay > 0 {
			t.Reset(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		if _, err := w.Write(e); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":%q}}`, typ, msg)
}

// MessageBytes is the size of Message.
const MessageBytes = 1024

var message = buildMessage()

// Message returns the stand-in's non-streamed answer: a Messages API
// message of MessageBytes bytes reporting Usage. The caller must not
// change it.
func Message() []byte { return message }

func buildMessage() []byte {
	const head = `{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"` + answerModel + `",` +
		`"content":[{"type":"text","text":"`
	tail := fmt.Sprintf(`"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":%d,`+
		`"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,`+
		`"ephemeral_1h_input_tokens":0},"output_tokens":%d,"service_tier":"standard"}}`,
		Usage.Input, Usage.CacheWrite, Usage.CacheRead, Usage.CacheWrite, Usage.Output)
	return []byte(head + filler(MessageBytes-len(head)-len(tail)) + tail)
}

// filler returns n bytes of plain prose, with nothing JSON would escape.
func filler(n int) string {
	const prose = "The function reads the configuration once at start and keeps it; every request after that uses the parsed form. "
	return strings.Repeat(prose, n/len(prose)+1)[:max(n, 0)]
}

// Stream returns the events of the stand-in's streamed answer with deltas
// content_block_delta events: message_start, content_block_start, ping,
// the deltas, content_block_stop, message_delta with the final usage,
// message_stop. Each event ends with a blank line.
func Stream(deltas int) [][]byte {
	events := [][]byte{
		fmt.Appendf(nil, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\","+
			"\"type\":\"message\",\"role\":\"assistant\",\"model\":%q,\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"+
			"\"usage\":{\"input_tokens\":%d,\"cache_creation_input_tokens\":%d,\"cache_read_input_tokens\":%d,"+
			"\"cache_creation\":{\"ephemeral_5m_input_tokens\":%d,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
			answerModel, Usage.Input, Usage.CacheWrite, Usage.CacheRead, Usage.CacheWrite),
		[]byte("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
		[]byte("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
	}
	for i := range deltas {
		events = append(events, fmt.Appendf(nil, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"+
			"\"delta\":{\"type\":\"text_delta\",\"text\":\"Part %d of the answer, a few words long. \"}}\n\n", i))
	}
	return append(events,
		[]byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"),
		fmt.Appendf(nil, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"+
			"\"usage\":{\"output_tokens\":%d}}\n\n", Usage.Output),
		[]byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
	)
}

// StreamEvents is the number of events of Stream(deltas).
func StreamEvents(deltas int) int { return deltas + 6 }

// StreamBytes returns the events of Stream(deltas) end to end: the body a
// client must receive.
func StreamBytes(deltas int) []byte { return bytes.Join(Stream(deltas), nil) }

// RequestBody returns a Messages API request for Model of exactly size
// bytes, or of the smallest size it can have if size is smaller: one
// user message padded with prose.
func RequestBody(maxTokens int, stream bool, size int) []byte {
	head := fmt.Sprintf(`{"model":%q,"max_tokens":%d,"stream":%t,"messages":[{"role":"user","content":"`, Model, maxTokens, stream)
	const tail = `"}],"metadata":{"user_id":"gatewaybench"}}`
	return []byte(head + filler(size-len(head)-len(tail)) + tail)
}
