package meter

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wardenhq/warden/shared/pricing"
)

// AnthropicStream meters a streamed Messages API answer (SSE), from
// Anthropic or from Bedrock's Anthropic models once their event-stream
// framing is removed. Write it the answer's bytes as they pass, in any
// chunks; it keeps the message's usage: message_start carries the input
// counts, message_delta the cumulative output count (the latest value of
// each field wins: counts are never added), message_stop ends a whole
// answer, an error event records the provider's error. Only those events
// are parsed as JSON; content_block_delta events are measured in place
// for the estimate of a cut stream.
//
// The zero value is ready to use. It is not safe for concurrent use.
type AnthropicStream struct {
	sse       sse
	model, id string
	counts    anthropicCounts
	started   bool // message_start read
	delta     bool // a message_delta read
	stopped   bool // message_stop seen
	stop      string
	err       *ProviderError
	outBytes  int64
	oversized int
	malformed int
}

// Write meters p. It never fails and keeps no reference to p.
func (m *AnthropicStream) Write(p []byte) (int, error) {
	m.sse.write(p, m)
	return len(p), nil
}

// Event meters one event given whole, without SSE framing, as Bedrock's
// invoke-with-response-stream carries them: the JSON of each chunk once
// the gateway has removed the AWS event-stream frame and the base64. The
// event's type is read from its data. Do not mix Event and Write on one
// meter.
func (m *AnthropicStream) Event(data []byte) {
	m.sse.total += int64(len(data))
	if len(data) == 0 {
		return
	}
	ev := event{data: data, size: int64(len(data))}
	if len(data) > MaxEventBytes {
		ev.data, ev.tail, ev.oversized = data[:headBytes], data[len(data)-tailBytes:], true
	}
	m.event(&ev)
}

func (m *AnthropicStream) event(ev *event) {
	typ := eventType(ev)
	if ev.oversized {
		m.oversized++
	}
	switch string(typ) {
	case "content_block_delta":
		m.outBytes += anthropicDeltaBytes(ev)
	case "ping", "content_block_start", "content_block_stop":
	case "message_start":
		m.started = m.messageStart(ev) || m.started
	case "message_delta":
		m.delta = m.messageDelta(ev) || m.delta
	case "message_stop":
		m.stopped = true
	case "error":
		m.err = anthropicErrorEvent(ev)
		if m.err == nil {
			m.malformed++
			m.err = newProviderError("error", "unreadable error event")
		}
	default:
		if ev.oversized {
			m.outBytes += ev.size
		}
	}
}

func anthropicDeltaBytes(ev *event) int64 {
	if ev.oversized {
		return ev.size
	}
	return stringBytes(ev.data, "text", "thinking", "partial_json")
}

func (m *AnthropicStream) messageStart(ev *event) bool {
	var msg struct {
		Message anthropicMessage `json:"message"`
	}
	if ev.oversized {
		msg.Message.Model = string(firstString(ev.data, `"model"`))
		msg.Message.ID = string(firstString(ev.data, `"id"`))
		msg.Message.Usage = new(anthropicUsage)
		if !lastObject(ev.tail, `"usage"`, msg.Message.Usage) {
			m.malformed++
			return false
		}
	} else if json.Unmarshal(ev.data, &msg) != nil || msg.Message.Usage == nil {
		m.malformed++
		return false
	}
	m.model, m.id = clip(msg.Message.Model, 256), clip(msg.Message.ID, 256)
	if !m.counts.merge(msg.Message.Usage) {
		m.malformed++
	}
	return true
}

func (m *AnthropicStream) messageDelta(ev *event) bool {
	var d struct {
		Delta struct {
			StopReason *string `json:"stop_reason"`
		} `json:"delta"`
		Usage *anthropicUsage `json:"usage"`
	}
	if ev.oversized {
		d.Usage = new(anthropicUsage)
		if !lastObject(ev.tail, `"usage"`, d.Usage) {
			m.malformed++
			return false
		}
	} else if json.Unmarshal(ev.data, &d) != nil || d.Usage == nil {
		m.malformed++
		return false
	}
	if d.Delta.StopReason != nil {
		m.stop = clip(*d.Delta.StopReason, 64)
	}
	if !m.counts.merge(d.Usage) {
		m.malformed++
	}
	return true
}

func anthropicErrorEvent(ev *event) *ProviderError {
	if ev.oversized {
		return nil
	}
	var e struct {
		Error *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(ev.data, &e) != nil || e.Error == nil {
		return nil
	}
	return newProviderError(e.Error.Type, e.Error.Message)
}

// Result returns what was read so far. When the answer is not complete,
// Tokens holds the latest usage seen with Output raised to the estimate
// from the delta text when that is larger (see the package doc).
func (m *AnthropicStream) Result() Result {
	r := Result{
		Model: m.model, ID: m.id, Stop: m.stop, Error: m.err,
		ServiceTier: m.counts.tier, Oversized: m.oversized, Malformed: m.malformed,
		Bytes: m.sse.total, OutputBytes: m.outBytes,
	}
	if ev, ok := m.sse.pending(); ok {
		switch typ := eventType(&ev); {
		case string(typ) == "content_block_delta":
			r.OutputBytes += anthropicDeltaBytes(&ev)
		case ev.oversized || len(typ) == 0:
			r.OutputBytes += ev.size
		}
	}
	r.Tokens, r.CacheTTLAssumed = m.counts.tokens()
	r.WebSearches = m.counts.webSearch.v
	r.InputCounted = m.counts.input.ok
	r.Complete = m.started && m.delta && m.stopped && m.malformed == 0 && m.err == nil &&
		m.counts.input.ok && m.counts.output.ok
	finish(&r)
	return r
}

// finish marks a result that is not complete as estimated and raises its
// output to the estimate from the delta text when that is larger.
func finish(r *Result) {
	r.Estimated = !r.Complete
	if r.Estimated {
		r.Tokens.Output = max(r.Tokens.Output, estimateTokens(r.OutputBytes))
	}
}

// anthropicMessage is a Messages API message: the non-streamed answer, or
// message_start's message.
type anthropicMessage struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Model      string          `json:"model"`
	StopReason *string         `json:"stop_reason"`
	Usage      *anthropicUsage `json:"usage"`
	Error      *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// anthropicUsage is a usage object as sent: a field absent or null is
// nil, so that a message_delta updates only the fields it carries.
type anthropicUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreation            *struct {
		Ephemeral5m *int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h *int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	ServerToolUse *struct {
		WebSearchRequests *int64 `json:"web_search_requests"`
	} `json:"server_tool_use"`
	ServiceTier *string `json:"service_tier"`
}

// count is the latest value of one usage field and whether it was given.
type count struct {
	v  int64
	ok bool
}

// set takes p's value if given; a negative value is refused.
func (c *count) set(p *int64) bool {
	if p == nil {
		return true
	}
	if *p < 0 {
		return false
	}
	c.v, c.ok = *p, true
	return true
}

// anthropicCounts holds the latest value of each usage field.
type anthropicCounts struct {
	input, cacheCreation, cacheRead, output, w5m, w1h, webSearch count
	tier                                                         string
}

// merge takes the fields u carries; false if one was impossible.
func (c *anthropicCounts) merge(u *anthropicUsage) bool {
	ok := c.input.set(u.InputTokens)
	ok = c.cacheCreation.set(u.CacheCreationInputTokens) && ok
	ok = c.cacheRead.set(u.CacheReadInputTokens) && ok
	ok = c.output.set(u.OutputTokens) && ok
	if cc := u.CacheCreation; cc != nil {
		ok = c.w5m.set(cc.Ephemeral5m) && ok
		ok = c.w1h.set(cc.Ephemeral1h) && ok
	}
	if st := u.ServerToolUse; st != nil {
		ok = c.webSearch.set(st.WebSearchRequests) && ok
	}
	if u.ServiceTier != nil {
		c.tier = clip(*u.ServiceTier, 64)
	}
	return ok
}

// tokens converts the counts. Cache writes counted in
// cache_creation_input_tokens but not split by lifetime go to the 1 h
// cache, the dearer: assumed reports it.
func (c *anthropicCounts) tokens() (t pricing.Tokens, assumed bool) {
	t = pricing.Tokens{Input: c.input.v, Output: c.output.v, CacheRead: c.cacheRead.v, CacheWrite5m: c.w5m.v, CacheWrite1h: c.w1h.v}
	if rest := c.cacheCreation.v - c.w5m.v - c.w1h.v; rest > 0 {
		t.CacheWrite1h += rest
		assumed = true
	}
	return t, assumed
}

// MaxBodyBytes is the largest non-streamed answer the JSON readers parse.
const MaxBodyBytes = 32 << 20

// errNoUsage is returned for a body that is neither an answer with usage
// nor an error.
var errNoUsage = errors.New("no usage in the answer")

// AnthropicJSON reads the usage of a non-streamed Messages API answer
// (Claude Code's retry with stream: false). An error body
// ({"type":"error",...}) gives a Result with Error set and no tokens. A
// body too large, not JSON, or without usage is an error; the Result then
// holds the estimate from the body's size.
func AnthropicJSON(body []byte) (Result, error) {
	r := Result{Bytes: int64(len(body))}
	if len(body) > MaxBodyBytes {
		return bodyTooLarge(r)
	}
	var msg anthropicMessage
	if err := json.Unmarshal(body, &msg); err != nil {
		return badBody(r, fmt.Errorf("read messages answer: %w", jsonProblem(err)))
	}
	if msg.Type == "error" || (msg.Error != nil && msg.Usage == nil) {
		r.Error = newProviderError("error", "")
		if msg.Error != nil {
			r.Error = newProviderError(msg.Error.Type, msg.Error.Message)
		}
		return r, nil
	}
	if msg.Usage == nil || msg.Usage.InputTokens == nil || msg.Usage.OutputTokens == nil {
		return badBody(r, fmt.Errorf("read messages answer: %w", errNoUsage))
	}
	var c anthropicCounts
	if !c.merge(msg.Usage) {
		r.Malformed++
	}
	r.Model, r.ID, r.ServiceTier = clip(msg.Model, 256), clip(msg.ID, 256), c.tier
	if msg.StopReason != nil {
		r.Stop = clip(*msg.StopReason, 64)
	}
	r.Tokens, r.CacheTTLAssumed = c.tokens()
	r.WebSearches = c.webSearch.v
	r.InputCounted = true
	r.Complete = r.Malformed == 0
	finish(&r)
	return r, nil
}

// bodyTooLarge and badBody give the result of a body that could not be
// read: every byte counts toward the output estimate.
func bodyTooLarge(r Result) (Result, error) {
	r.Oversized++
	r.OutputBytes = r.Bytes
	finish(&r)
	return r, fmt.Errorf("answer is %d bytes; the limit is %d", r.Bytes, MaxBodyBytes)
}

func badBody(r Result, err error) (Result, error) {
	r.Malformed++
	r.OutputBytes = r.Bytes
	finish(&r)
	return r, err
}

// jsonProblem describes a JSON error without echoing the input.
func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q has the wrong type", typ.Field)
	}
	return errors.New("invalid JSON")
}
