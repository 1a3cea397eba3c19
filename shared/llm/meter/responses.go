package meter

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/wardenhq/warden/shared/pricing"
)

// ResponsesStream meters a streamed OpenAI Responses API answer (SSE), as
// Codex receives it. The usage arrives once, at the end, in
// response.completed (or response.incomplete, or response.failed);
// response.created gives the model early; an error event records the
// provider's error. Only those events are parsed as JSON; the *.delta
// events are measured in place for the estimate of a cut stream.
//
// The zero value is ready to use. It is not safe for concurrent use.
type ResponsesStream struct {
	sse       sse
	model, id string
	status    string
	tier      string
	tokens    pricing.Tokens
	final     bool // a terminal event with usage was read
	err       *ProviderError
	outBytes  int64
	oversized int
	malformed int
}

// Write meters p. It never fails and keeps no reference to p.
func (m *ResponsesStream) Write(p []byte) (int, error) {
	m.sse.write(p, m)
	return len(p), nil
}

func (m *ResponsesStream) event(ev *event) {
	typ := eventType(ev)
	if ev.oversized {
		m.oversized++
	}
	switch t := string(typ); t {
	case "response.created", "response.in_progress", "response.queued":
		if m.model == "" {
			m.start(ev)
		}
	case "response.completed", "response.incomplete", "response.failed":
		m.end(t, ev)
	case "error":
		m.errorEvent(ev)
	default:
		switch {
		case bytes.HasSuffix(typ, []byte(".delta")):
			m.outBytes += responsesDeltaBytes(ev)
		case bytes.HasSuffix(typ, []byte(".done")), bytes.HasSuffix(typ, []byte(".added")):
			// The whole of what the deltas carried, or the start of an item.
		case ev.oversized:
			m.outBytes += ev.size
		}
	}
}

func responsesDeltaBytes(ev *event) int64 {
	if ev.oversized {
		return ev.size
	}
	return stringBytes(ev.data, "delta")
}

// responseObject is the part of a Responses API response that matters
// here: the non-streamed answer, or the response in a stream event.
type responseObject struct {
	ID                string          `json:"id"`
	Model             string          `json:"model"`
	Status            string          `json:"status"`
	ServiceTier       *string         `json:"service_tier"`
	Usage             *responsesUsage `json:"usage"`
	Error             *openAIError    `json:"error"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
}

type openAIError struct {
	Type    string `json:"type"`
	Code    any    `json:"code"` // a string, or a number from some servers
	Message string `json:"message"`
}

func (e *openAIError) provider() *ProviderError {
	typ := e.Type
	if c, ok := e.Code.(string); ok && c != "" {
		typ = c
	} else if e.Code != nil && typ == "" {
		typ = fmt.Sprint(e.Code)
	}
	return newProviderError(typ, e.Message)
}

type responsesUsage struct {
	InputTokens        *int64 `json:"input_tokens"`
	InputTokensDetails *struct {
		CachedTokens *int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        *int64 `json:"output_tokens"`
	OutputTokensDetails *struct {
		ReasoningTokens *int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
}

// tokens converts a Responses usage object; false if a count is missing
// or impossible.
func (u *responsesUsage) tokens() (pricing.Tokens, bool) {
	if u.InputTokens == nil || u.OutputTokens == nil {
		return pricing.Tokens{}, false
	}
	var cached, reasoning *int64
	if d := u.InputTokensDetails; d != nil {
		cached = d.CachedTokens
	}
	if d := u.OutputTokensDetails; d != nil {
		reasoning = d.ReasoningTokens
	}
	return openAITokens(*u.InputTokens, deref(cached), *u.OutputTokens, deref(reasoning))
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// openAITokens converts OpenAI's counts, in which input includes the
// cached tokens and output the reasoning tokens, to pricing's convention.
// Impossible counts (negative, more cached than input, more reasoning
// than output) give false and tokens that price no lower than the counts
// could mean: nothing taken as cached.
func openAITokens(input, cached, output, reasoning int64) (pricing.Tokens, bool) {
	if input < 0 || cached < 0 || output < 0 || reasoning < 0 || cached > input || reasoning > output {
		return pricing.Tokens{Input: max(input, cached, 0), Output: max(output, reasoning, 0), Reasoning: max(reasoning, 0)}, false
	}
	return pricing.Tokens{Input: input - cached, CacheRead: cached, Output: output, Reasoning: reasoning}, true
}

func (m *ResponsesStream) start(ev *event) {
	if ev.oversized {
		m.model, m.id = clip(string(firstString(ev.data, `"model"`)), 256), clip(string(firstString(ev.data, `"id"`)), 256)
		return
	}
	var e struct {
		Response responseObject `json:"response"`
	}
	if json.Unmarshal(ev.data, &e) != nil {
		return // not usage: the model is learnt again at the end
	}
	m.model, m.id = clip(e.Response.Model, 256), clip(e.Response.ID, 256)
	if e.Response.ServiceTier != nil {
		m.tier = clip(*e.Response.ServiceTier, 64)
	}
}

// end reads a terminal event: its usage, status and error.
func (m *ResponsesStream) end(typ string, ev *event) {
	var e struct {
		Response responseObject `json:"response"`
	}
	resp := &e.Response
	if ev.oversized {
		resp.Model, resp.ID = string(firstString(ev.data, `"model"`)), string(firstString(ev.data, `"id"`))
		resp.Status = typ[len("response."):]
		if tier := lastString(ev.tail, `"service_tier"`); tier != nil {
			resp.ServiceTier = new(string(tier))
		}
		resp.Usage = new(responsesUsage)
		if !lastObject(ev.tail, `"usage"`, resp.Usage) {
			resp.Usage = nil
		}
	} else if json.Unmarshal(ev.data, &e) != nil {
		m.malformed++
		return
	}
	m.apply(resp, typ[len("response."):])
}

// apply takes what a final response object says.
func (m *ResponsesStream) apply(resp *responseObject, status string) {
	if resp.Model != "" {
		m.model = clip(resp.Model, 256)
	}
	if resp.ID != "" {
		m.id = clip(resp.ID, 256)
	}
	if resp.ServiceTier != nil {
		m.tier = clip(*resp.ServiceTier, 64)
	}
	if resp.Status != "" {
		status = resp.Status
	}
	m.status = clip(status, 64)
	if d := resp.IncompleteDetails; d != nil && d.Reason != "" {
		m.status = clip(status+": "+d.Reason, 128)
	}
	if resp.Error != nil {
		m.err = resp.Error.provider()
	} else if status == "failed" {
		m.err = newProviderError("failed", "")
	}
	if resp.Usage == nil {
		if status != "failed" {
			m.malformed++ // completed or incomplete answers always carry usage
		}
		return
	}
	t, ok := resp.Usage.tokens()
	if !ok {
		m.malformed++
	}
	m.tokens, m.final = t, true
}

func (m *ResponsesStream) errorEvent(ev *event) {
	var e struct {
		openAIError
		Error *openAIError `json:"error"`
	}
	switch {
	case ev.oversized || json.Unmarshal(ev.data, &e) != nil:
		m.malformed++
		m.err = newProviderError("error", "unreadable error event")
	case e.Error != nil:
		m.err = e.Error.provider()
	default:
		m.err = e.openAIError.provider()
	}
}

// Result returns what was read so far. When the answer is not complete,
// Tokens has no input count (InputCounted is false: OpenAI counts it only
// at the end) and Output is the estimate from the delta text.
func (m *ResponsesStream) Result() Result {
	r := Result{
		Model: m.model, ID: m.id, Stop: m.status, ServiceTier: m.tier, Error: m.err,
		Oversized: m.oversized, Malformed: m.malformed, Bytes: m.sse.total, OutputBytes: m.outBytes,
	}
	if ev, ok := m.sse.pending(); ok {
		switch typ := eventType(&ev); {
		case bytes.HasSuffix(typ, []byte(".delta")):
			r.OutputBytes += responsesDeltaBytes(&ev)
		case ev.oversized || len(typ) == 0:
			r.OutputBytes += ev.size
		}
	}
	if m.final {
		r.Tokens, r.InputCounted = m.tokens, true
	}
	r.Complete = m.final && m.malformed == 0 && m.err == nil
	finish(&r)
	return r
}

// ResponsesJSON reads the usage of a non-streamed Responses API answer.
// An error body ({"error":{...}}) gives a Result with Error set and no
// tokens. A body too large, not JSON, or without usage is an error; the
// Result then holds the estimate from the body's size.
func ResponsesJSON(body []byte) (Result, error) {
	r := Result{Bytes: int64(len(body))}
	if len(body) > MaxBodyBytes {
		return bodyTooLarge(r)
	}
	var resp responseObject
	if err := json.Unmarshal(body, &resp); err != nil {
		return badBody(r, fmt.Errorf("read responses answer: %w", jsonProblem(err)))
	}
	if resp.Error != nil && resp.Usage == nil {
		r.Error = resp.Error.provider()
		return r, nil
	}
	if resp.Usage == nil {
		return badBody(r, fmt.Errorf("read responses answer: %w", errNoUsage))
	}
	var m ResponsesStream
	m.apply(&resp, resp.Status)
	r = m.Result()
	r.Bytes = int64(len(body))
	return r, nil
}
