package llm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream/eventstreamapi"

	"github.com/wardenhq/warden/shared/llm/meter"
	"github.com/wardenhq/warden/shared/pricing"
)

// Bedrock streams an answer (InvokeModelWithResponseStream) in the AWS
// event-stream encoding, application/vnd.amazon.eventstream: binary frames,
// each one message with headers and a payload. For an Anthropic model every
// event message (:message-type event, :event-type chunk) carries one
// Anthropic Messages event, as {"bytes":"<base64 of the event's JSON>"};
// an exception message (:message-type exception, :exception-type
// throttlingException, modelStreamErrorException, …) ends the stream.

// Limits of what Warden reads from an event stream.
const (
	// maxFrameBytes bounds one event-stream frame. An Anthropic event is a
	// few hundred bytes (a content block may be more); its frame is 4/3 of
	// it, in base64, plus headers.
	maxFrameBytes = 8 << 20
	// minFrameBytes is the smallest frame there is: the prelude (total and
	// headers length), its CRC and the message CRC.
	minFrameBytes = 16
	// keepFrameBytes is the frame buffer kept between frames; a larger one,
	// grown for one big frame, is released after it.
	keepFrameBytes = 64 << 10
	// maxErrorBytes bounds an upstream error message shown to the agent and
	// recorded, and the error body read from Bedrock.
	maxErrorBytes  = 1 << 10
	maxErrorBodyIn = 64 << 10
)

// frames splits an event stream, fed in any chunks, into messages. Each
// frame is decoded by the SDK's eventstream.Decoder (headers, payload and
// both CRCs); frames itself only reads a frame's first four bytes, its
// total length, so as to buffer no more than maxFrameBytes whatever the
// stream says: the Decoder trusts that length and would buffer up to 4 GiB.
type frames struct {
	// skipOversized passes over a frame larger than maxFrameBytes (counted
	// in skipped) instead of stopping there.
	skipOversized bool

	buf     []byte // the frame being received, its length prefix first
	need    int    // the frame's total length once its prefix is read
	skip    int64  // bytes of an oversized frame still to pass over
	skipped int64  // bytes of oversized frames passed over
	pos     int64  // bytes consumed
	start   int64  // where the frame being received starts
	err     error  // why the stream cannot be read further
	errAt   int64  // where the frame that could not be read starts
	dec     eventstream.Decoder
	payload []byte // reused for each message's payload
}

// write feeds p, handing each complete message to take, which returns
// false to stop reading p. After an error, write reads nothing more.
func (s *frames) write(p []byte, take func(*eventstream.Message) bool) {
	for len(p) > 0 && s.err == nil {
		if s.skip > 0 {
			n := min(int64(len(p)), s.skip)
			s.skip, s.skipped, s.pos = s.skip-n, s.skipped+n, s.pos+n
			p = p[n:]
			continue
		}
		if s.need == 0 {
			if len(s.buf) == 0 {
				s.start = s.pos
			}
			k := min(4-len(s.buf), len(p))
			s.buf = append(s.buf, p[:k]...)
			s.pos += int64(k)
			p = p[k:]
			if len(s.buf) < 4 {
				return
			}
			n := binary.BigEndian.Uint32(s.buf)
			switch {
			case n < minFrameBytes:
				s.broken(fmt.Errorf("an event-stream frame says it is %d bytes long, less than any frame", n))
				return
			case n > maxFrameBytes && s.skipOversized:
				s.skipped += 4
				s.skip = int64(n) - 4
				s.buf = s.buf[:0]
				continue
			case n > maxFrameBytes:
				s.broken(fmt.Errorf("an event-stream frame of %d bytes is larger than the limit of %d", n, maxFrameBytes))
				return
			}
			s.need = int(n)
		}
		k := min(s.need-len(s.buf), len(p))
		s.buf = append(s.buf, p[:k]...)
		s.pos += int64(k)
		p = p[k:]
		if len(s.buf) < s.need {
			return
		}
		m, err := s.dec.Decode(bytes.NewReader(s.buf), s.payload[:0])
		s.need = 0
		if err != nil {
			s.broken(fmt.Errorf("an event-stream frame could not be decoded: %w", err))
			return
		}
		s.payload = m.Payload[:0]
		more := take(&m)
		s.buf = s.buf[:0]
		if cap(s.buf) > keepFrameBytes {
			s.buf = nil
		}
		if cap(s.payload) > keepFrameBytes {
			s.payload = nil
		}
		if !more {
			return
		}
	}
}

func (s *frames) broken(err error) {
	s.err, s.errAt = err, s.start
	s.buf, s.need = nil, 0
}

// inFrame says whether a frame was begun and not finished.
func (s *frames) inFrame() bool { return len(s.buf) > 0 || s.skip > 0 }

// upstreamError is an error Bedrock reported, mapped to the Anthropic
// error an agent understands.
type upstreamError struct {
	status  int    // the HTTP status for an answer that has not started
	typ     string // the Anthropic error type
	message string // for the agent: "Bedrock <name>: <Bedrock's message>"
}

// bedrockErrors maps Bedrock's error and exception names (the stream's
// :exception-type is camelCase, X-Amzn-ErrorType capitalised; compared
// case-insensitively) to an HTTP status and Anthropic error type.
var bedrockErrors = map[string]struct {
	status int
	typ    string
}{
	"throttlingexception":           {http.StatusTooManyRequests, "rate_limit_error"},
	"servicequotaexceededexception": {http.StatusTooManyRequests, "rate_limit_error"},
	"serviceunavailableexception":   {529, "overloaded_error"},
	"modelnotreadyexception":        {529, "overloaded_error"},
	"validationexception":           {400, "invalid_request_error"},
	"accessdeniedexception":         {403, "permission_error"},
	"unrecognizedclientexception":   {403, "permission_error"},
	"resourcenotfoundexception":     {404, "not_found_error"},
	"modeltimeoutexception":         {504, "timeout_error"},
	"modelerrorexception":           {500, "api_error"},
	"modelstreamerrorexception":     {500, "api_error"},
	"internalserverexception":       {500, "api_error"},
}

// newUpstreamError maps an error named name (possibly "") that came with
// the HTTP status code (0 inside a stream).
func newUpstreamError(name string, code int, message string) *upstreamError {
	e := &upstreamError{status: 500, typ: "api_error"}
	if k, ok := bedrockErrors[strings.ToLower(name)]; ok {
		e.status, e.typ = k.status, k.typ
	} else if code != 0 {
		e.status = code
		switch {
		case code == 400 || code == 422:
			e.typ = "invalid_request_error"
		case code == 401 || code == 403:
			e.status, e.typ = 403, "permission_error"
		case code == 404:
			e.typ = "not_found_error"
		case code == 413:
			e.typ = "request_too_large"
		case code == 429:
			e.typ = "rate_limit_error"
		case code >= 500:
			e.status = 502
		default:
			e.typ = "invalid_request_error"
		}
	}
	label := "Bedrock"
	if name != "" {
		label += " " + clipText(name, 64)
	}
	if message = clipText(message, maxErrorBytes); message != "" {
		label += ": " + message
	}
	e.message = label
	return e
}

// event is the Anthropic error event for e.
func (e *upstreamError) event() []byte {
	b, _ := json.Marshal(anthropicErrorBody{Type: "error", Error: anthropicErrorDetail{Type: e.typ, Message: e.message}})
	return b
}

type anthropicErrorBody struct {
	Type  string               `json:"type"`
	Error anthropicErrorDetail `json:"error"`
}

type anthropicErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// invocationMetrics are the counts Bedrock adds to an answer: in the last
// chunk of a stream ("amazon-bedrock-invocationMetrics") or in the
// X-Amzn-Bedrock-*-Token-Count headers of a non-streamed one. Warden
// charges the usage of the Anthropic events; these only check it.
type invocationMetrics struct {
	Input      *int64 `json:"inputTokenCount"`
	Output     *int64 `json:"outputTokenCount"`
	CacheRead  *int64 `json:"cacheReadInputTokenCount"`
	CacheWrite *int64 `json:"cacheWriteInputTokenCount"`
}

// readMetrics reads the metrics of a message_stop event, if it has them.
func readMetrics(data []byte) *invocationMetrics {
	if !bytes.Contains(data, []byte(`"amazon-bedrock-invocationMetrics"`)) {
		return nil
	}
	var ev struct {
		Metrics *invocationMetrics `json:"amazon-bedrock-invocationMetrics"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return nil
	}
	return ev.Metrics
}

// metricsFromHeaders reads the metrics of a non-streamed answer.
func metricsFromHeaders(h map[string][]string) *invocationMetrics {
	get := func(name string) *int64 {
		vs := h[name]
		if len(vs) == 0 {
			return nil
		}
		n, err := strconv.ParseInt(vs[0], 10, 64)
		if err != nil {
			return nil
		}
		return &n
	}
	m := &invocationMetrics{Input: get("X-Amzn-Bedrock-Input-Token-Count"), Output: get("X-Amzn-Bedrock-Output-Token-Count"),
		CacheRead: get("X-Amzn-Bedrock-Cache-Read-Input-Token-Count"), CacheWrite: get("X-Amzn-Bedrock-Cache-Write-Input-Token-Count")}
	if m.Input == nil && m.Output == nil {
		return nil
	}
	return m
}

// disagrees says whether a count Bedrock gave differs from t.
func (m *invocationMetrics) disagrees(t pricing.Tokens) bool {
	differs := func(p *int64, v int64) bool { return p != nil && *p != v }
	return differs(m.Input, t.Input) || differs(m.Output, t.Output) || differs(m.CacheRead, t.CacheRead) ||
		differs(m.CacheWrite, t.CacheWrite5m+t.CacheWrite1h)
}

func (m *invocationMetrics) String() string {
	f := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
	}
	return fmt.Sprintf("input %s, output %s, cache read %s, cache write %s", f(m.Input), f(m.Output), f(m.CacheRead), f(m.CacheWrite))
}

// bedrockStream reads Bedrock's event stream of an Anthropic model. It
// meters every Anthropic event; with emit set it also turns each into the
// Anthropic SSE event an agent reads ("event: <type>\ndata: <json>\n\n"),
// handed to emit one at a time, and stops at the first thing it cannot
// read. Without emit (the stream passes to the agent unchanged) it meters
// what it can and passes over the rest, counting it toward the estimate.
type bedrockStream struct {
	emit func(sse []byte) error

	frames  frames
	meter   meter.AnthropicStream
	metrics *invocationMetrics
	events  int            // Anthropic events read (and emitted)
	stopped bool           // message_stop read
	upErr   *upstreamError // the exception that ended the stream
	problem error          // why the stream could not be read
	werr    error          // emit's error: the agent went away
	done    bool           // nothing more is taken

	bytes      int64 // every byte written
	unreadable int64 // bytes of messages that could not be read
	sse        []byte
}

func newBedrockStream(emit func([]byte) error) *bedrockStream {
	return &bedrockStream{emit: emit, frames: frames{skipOversized: emit == nil}}
}

// Write feeds the stream's bytes, in any chunks. It never fails; Done says
// when the stream needs no more.
func (s *bedrockStream) Write(p []byte) (int, error) {
	s.bytes += int64(len(p))
	if s.done || s.frames.err != nil {
		return len(p), nil
	}
	s.frames.write(p, s.message)
	if s.frames.err != nil && s.emit != nil {
		s.fail(s.frames.err)
	}
	return len(p), nil
}

// Done reports that the stream ended (an exception), could not be read
// further, or the agent went away.
func (s *bedrockStream) Done() bool { return s.done }

func (s *bedrockStream) fail(err error) {
	if s.problem == nil {
		s.problem = err
	}
	if s.emit != nil {
		s.done = true
	}
}

func headerString(m *eventstream.Message, name string) string {
	if v, ok := m.Headers.Get(name).(eventstream.StringValue); ok {
		return string(v)
	}
	return ""
}

// message takes one event-stream message; false stops the stream.
func (s *bedrockStream) message(m *eventstream.Message) bool {
	switch typ := headerString(m, eventstreamapi.MessageTypeHeader); typ {
	case eventstreamapi.EventMessageType:
		if headerString(m, eventstreamapi.EventTypeHeader) != "chunk" {
			return true // not an Anthropic event: nothing to pass on
		}
		return s.chunk(m.Payload)
	case eventstreamapi.ExceptionMessageType:
		var body struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(m.Payload, &body) // a message is optional
		return s.exception(newUpstreamError(headerString(m, eventstreamapi.ExceptionTypeHeader), 0, body.Message))
	case eventstreamapi.ErrorMessageType:
		return s.exception(newUpstreamError(headerString(m, eventstreamapi.ErrorCodeHeader), 0, headerString(m, eventstreamapi.ErrorMessageHeader)))
	default:
		s.unreadable += int64(len(m.Payload))
		s.fail(fmt.Errorf("an event-stream message of type %q", clipText(typ, 64)))
		return !s.done
	}
}

// chunk takes one chunk event: the base64 of one Anthropic event.
func (s *bedrockStream) chunk(payload []byte) bool {
	var c struct {
		Bytes []byte `json:"bytes"`
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || len(c.Bytes) == 0 {
		s.unreadable += int64(len(payload))
		s.fail(errors.New("a chunk without the bytes of an event"))
		return !s.done
	}
	data := c.Bytes
	if err := json.Unmarshal(data, &head); err != nil || !validEventType(head.Type) {
		s.unreadable += int64(len(data))
		s.fail(errors.New("a chunk that is not an Anthropic event"))
		return !s.done
	}
	if bytes.ContainsAny(data, "\r\n") { // one line of data per event
		var b bytes.Buffer
		_ = json.Compact(&b, data) // valid: it was just parsed
		data = b.Bytes()
	}
	s.events++
	if head.Type == "message_stop" {
		s.stopped = true
		s.metrics = readMetrics(data)
	}
	// The agent gets the event first; what Bedrock produced is metered
	// whether or not the agent is still there.
	werr := s.send(head.Type, data)
	s.meter.Event(data)
	if werr != nil {
		s.werr, s.done = werr, true
		return false
	}
	return true
}

// exception takes an exception or error message, which ends the stream.
func (s *bedrockStream) exception(e *upstreamError) bool {
	s.upErr = e
	ev := e.event()
	s.meter.Event(ev)
	if s.events > 0 { // an answer not begun is answered with e's status instead
		if err := s.send("error", ev); err != nil {
			s.werr = err
		}
	}
	s.done = true
	return false
}

// send hands one SSE event to emit.
func (s *bedrockStream) send(typ string, data []byte) error {
	if s.emit == nil {
		return nil
	}
	s.sse = append(append(append(append(s.sse[:0], "event: "...), typ...), "\ndata: "...), data...)
	s.sse = append(s.sse, '\n', '\n')
	err := s.emit(s.sse)
	if cap(s.sse) > keepFrameBytes {
		s.sse = nil
	}
	return err
}

// abort tells the agent, in an Anthropic error event, that the answer it
// is reading will not be completed. It is not metered: it is Warden's.
func (s *bedrockStream) abort(message string) {
	if s.emit == nil || s.werr != nil || s.upErr != nil || s.events == 0 {
		return
	}
	ev, _ := json.Marshal(anthropicErrorBody{Type: "error", Error: anthropicErrorDetail{Type: "api_error", Message: message}})
	if err := s.send("error", ev); err != nil {
		s.werr = err
	}
	s.done = true
}

// broken says why the stream is not whole: "" when it ended with
// message_stop, at a frame boundary, with every frame read.
func (s *bedrockStream) broken() string {
	switch {
	case s.problem != nil:
		return "the stream could not be read: " + s.problem.Error()
	case s.frames.err != nil:
		return "the stream could not be read: " + s.frames.err.Error()
	case s.frames.inFrame():
		return "the stream ended inside an event"
	case s.upErr != nil:
		return s.upErr.message
	case !s.stopped:
		return "the stream ended before message_stop"
	}
	return ""
}

// Result is the usage read so far, as meter.Result. What could not be read
// makes it incomplete and counts toward the output estimate.
func (s *bedrockStream) Result() meter.Result {
	r := s.meter.Result()
	r.Bytes = s.bytes
	// What could not be read may have carried output: every byte of it
	// counts toward the estimate, from a broken frame to the end.
	lost := s.unreadable + s.frames.skipped + int64(len(s.frames.buf))
	if s.frames.err != nil {
		lost += s.bytes - s.frames.errAt
	}
	if s.problem != nil || s.frames.err != nil || lost > 0 || s.frames.skip > 0 {
		r.Complete, r.Estimated = false, true
		r.Malformed++
		r.OutputBytes = min(r.OutputBytes+lost, r.Bytes)
		r.Tokens.Output = max(r.Tokens.Output, (r.OutputBytes+meter.BytesPerToken-1)/meter.BytesPerToken)
	}
	return r
}

var _ meter.Meter = (*bedrockStream)(nil)

// validEventType accepts an Anthropic event type: a short lowercase word
// with underscores, safe on an SSE event line.
func validEventType(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// clipText cuts s to at most n bytes on a rune boundary, dropping control
// characters, so that it is safe in a message and a log.
func clipText(s string, n int) string {
	var b []byte
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = ' '
		}
		if len(b)+utf8.RuneLen(r) > n {
			break
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}
