package meter

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/wardenhq/warden/shared/pricing"
)

// ChatStream meters a streamed OpenAI Chat Completions answer: SSE
// "data:" chunks ending with "data: [DONE]". The usage comes in a last
// chunk only when the request set stream_options.include_usage; without
// it the answer is never complete, and the gateway should set it. A chunk
// is parsed as JSON only when it carries a usage object or an error, and
// the first one for the model; the others are measured in place.
//
// The zero value is ready to use. It is not safe for concurrent use.
type ChatStream struct {
	sse       sse
	model, id string
	finish    string
	tier      string
	tokens    pricing.Tokens
	usage     bool // a usage chunk was read
	done      bool // [DONE] seen
	first     bool // the first chunk was read
	err       *ProviderError
	outBytes  int64
	oversized int
	malformed int
}

// Write meters p. It never fails and keeps no reference to p.
func (m *ChatStream) Write(p []byte) (int, error) {
	m.sse.write(p, m)
	return len(p), nil
}

// chatChunk is the part of a chat.completion(.chunk) that matters here.
type chatChunk struct {
	ID          string       `json:"id"`
	Model       string       `json:"model"`
	ServiceTier *string      `json:"service_tier"`
	Usage       *chatUsage   `json:"usage"`
	Error       *openAIError `json:"error"`
	Choices     []struct {
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

type chatUsage struct {
	PromptTokens        *int64 `json:"prompt_tokens"`
	CompletionTokens    *int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens *int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens *int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

func (u *chatUsage) tokens() (pricing.Tokens, bool) {
	if u.PromptTokens == nil || u.CompletionTokens == nil {
		return pricing.Tokens{}, false
	}
	var cached, reasoning *int64
	if d := u.PromptTokensDetails; d != nil {
		cached = d.CachedTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		reasoning = d.ReasoningTokens
	}
	return openAITokens(*u.PromptTokens, deref(cached), *u.CompletionTokens, deref(reasoning))
}

var (
	doneData = []byte("[DONE]")
	// chatText are the keys whose string values are generated text.
	chatText = []string{"content", "arguments", "refusal", "reasoning_content"}
)

func (m *ChatStream) event(ev *event) {
	if ev.oversized {
		m.oversized++
		m.outBytes += ev.size
		if u := new(chatUsage); lastObject(ev.tail, `"usage"`, u) {
			m.takeUsage(u)
		}
		return
	}
	data := bytes.TrimSpace(ev.data)
	if bytes.Equal(data, doneData) {
		m.done = true
		return
	}
	// One pass over the chunk: the text it carries, whether it has a
	// usage object, its finish reason.
	var usage bool
	var finish []byte
	s := keyScanner{data: data}
	for {
		key, v, ok := s.next()
		if !ok {
			break
		}
		switch string(key) {
		case "content", "arguments", "refusal", "reasoning_content":
			n, _ := s.stringValue(v)
			m.outBytes += n
		case "usage":
			usage = usage || (v < len(data) && data[v] == '{')
		case "finish_reason":
			if v < len(data) && data[v] == '"' {
				finish = data[v+1 : stringEnd(data, v+1)]
			}
		}
	}
	if isError(data) || !m.first || usage {
		m.chunk(data)
	} else if finish != nil {
		m.finish = clip(string(finish), 64)
	}
}

// isError reports whether a chunk is an error object: {"error": ...}.
func isError(data []byte) bool {
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	return bytes.HasPrefix(data[skipSpace(data, 1):], []byte(`"error"`))
}

// chunk parses a chunk that matters: the first, one with usage, an error.
func (m *ChatStream) chunk(data []byte) {
	var c chatChunk
	if err := json.Unmarshal(data, &c); err != nil {
		m.malformed++
		return
	}
	m.first = true
	if c.Error != nil {
		m.err = c.Error.provider()
		return
	}
	if c.Model != "" {
		m.model = clip(c.Model, 256)
	}
	if c.ID != "" {
		m.id = clip(c.ID, 256)
	}
	if c.ServiceTier != nil {
		m.tier = clip(*c.ServiceTier, 64)
	}
	for _, ch := range c.Choices {
		if ch.FinishReason != nil {
			m.finish = clip(*ch.FinishReason, 64)
		}
	}
	if c.Usage != nil {
		m.takeUsage(c.Usage)
	}
}

// takeUsage keeps the latest usage: a server that repeats it repeats the
// whole count.
func (m *ChatStream) takeUsage(u *chatUsage) {
	t, ok := u.tokens()
	if !ok {
		m.malformed++
		if u.PromptTokens == nil || u.CompletionTokens == nil {
			return
		}
	}
	m.tokens, m.usage = t, true
}

// Result returns what was read so far. Without a usage chunk, Tokens has
// no input count (InputCounted is false) and Output is the estimate from
// the content and tool-argument text.
func (m *ChatStream) Result() Result {
	r := Result{
		Model: m.model, ID: m.id, Stop: m.finish, ServiceTier: m.tier, Error: m.err,
		Oversized: m.oversized, Malformed: m.malformed, Bytes: m.sse.total, OutputBytes: m.outBytes,
	}
	if ev, ok := m.sse.pending(); ok {
		if ev.oversized {
			r.OutputBytes += ev.size
		} else {
			r.OutputBytes += stringBytes(ev.data, chatText...)
		}
	}
	if m.usage {
		r.Tokens, r.InputCounted = m.tokens, true
	}
	r.Complete = m.usage && m.done && m.malformed == 0 && m.err == nil
	finish(&r)
	return r
}

// ChatJSON reads the usage of a non-streamed Chat Completions answer. An
// error body ({"error":{...}}) gives a Result with Error set and no
// tokens. A body too large, not JSON, or without usage is an error; the
// Result then holds the estimate from the body's size.
func ChatJSON(body []byte) (Result, error) {
	r := Result{Bytes: int64(len(body))}
	if len(body) > MaxBodyBytes {
		return bodyTooLarge(r)
	}
	var c chatChunk
	if err := json.Unmarshal(body, &c); err != nil {
		return badBody(r, fmt.Errorf("read chat answer: %w", jsonProblem(err)))
	}
	if c.Error != nil && c.Usage == nil {
		r.Error = c.Error.provider()
		return r, nil
	}
	if c.Usage == nil || c.Usage.PromptTokens == nil || c.Usage.CompletionTokens == nil {
		return badBody(r, fmt.Errorf("read chat answer: %w", errNoUsage))
	}
	t, ok := c.Usage.tokens()
	if !ok {
		r.Malformed++
	}
	r.Model, r.ID, r.Tokens, r.InputCounted = clip(c.Model, 256), clip(c.ID, 256), t, true
	if c.ServiceTier != nil {
		r.ServiceTier = clip(*c.ServiceTier, 64)
	}
	for _, ch := range c.Choices {
		if ch.FinishReason != nil {
			r.Stop = clip(*ch.FinishReason, 64)
		}
	}
	r.Complete = ok
	finish(&r)
	return r, nil
}
