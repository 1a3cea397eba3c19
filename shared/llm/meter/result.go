package meter

import (
	"fmt"
	"io"

	"github.com/wardenhq/warden/shared/pricing"
)

// Result is what a meter read from one answer.
type Result struct {
	// Model is the model the provider says answered; "" when not seen.
	Model string
	// ID is the provider's message or response ID; "" when not seen.
	ID string
	// Tokens is the usage, in pricing's convention: the provider's final
	// count when Complete, else the estimate described in the package
	// documentation.
	Tokens pricing.Tokens
	// Complete is set when the answer ended as the API ends a whole answer
	// and carried its final usage, every usage event was read, and so
	// Tokens is the provider's own count.
	Complete bool
	// Estimated is set when Tokens is not entirely the provider's count:
	// whenever the answer is not Complete, except an error body (a
	// non-streamed error answer), which has Error set and no tokens: the
	// providers bill no error answer.
	Estimated bool
	// InputCounted is set when the input side of Tokens (Input, CacheRead,
	// CacheWrite5m, CacheWrite1h) is the provider's count. Anthropic sends
	// it at the start of a stream; OpenAI only at the end, so an OpenAI
	// stream cut short has no input count and the caller must settle the
	// input from what it knows of the request (its reservation).
	InputCounted bool
	// Stop is why the answer ended as the provider put it: Anthropic's
	// stop_reason, OpenAI's status (and incomplete reason, as
	// "incomplete: max_output_tokens") or Chat's finish_reason.
	Stop string
	// ServiceTier is the tier the provider says served the call, when it
	// says: prices in shared/pricing are those of the standard tier.
	ServiceTier string
	// WebSearches is Anthropic's server_tool_use.web_search_requests,
	// billed per request apart from tokens.
	WebSearches int64
	// Error is an error the provider reported inside the answer: an SSE
	// error event, a failed response, an error body.
	Error *ProviderError
	// CacheTTLAssumed is set when Anthropic reported cache writes without
	// splitting them by lifetime (or split fewer than it counted): those
	// tokens are in CacheWrite1h, the dearer, since the meter cannot see
	// which lifetime the request asked for.
	CacheTTLAssumed bool
	// Oversized counts events larger than MaxEventBytes (or a body larger
	// than MaxBodyBytes), passed over rather than parsed.
	Oversized int
	// Malformed counts events that should have carried usage or an error
	// but could not be read, and usage values that were impossible
	// (negative, or more cached tokens than input tokens).
	Malformed int
	// Bytes is how many bytes the meter was given.
	Bytes int64
	// OutputBytes is the text the output estimate is based on: the bytes
	// of the delta strings (text, thinking, tool arguments) as they passed,
	// plus every byte of an oversized event that may have carried output
	// (a delta, or a type the meter does not know), or of a body that
	// could not be read.
	OutputBytes int64
}

// ProviderError is an error reported by the provider inside an answer.
type ProviderError struct {
	// Type is the error's type or code, such as "overloaded_error" or
	// "server_error".
	Type string
	// Message is the provider's message, cut to maxMessageBytes.
	Message string
}

func (e *ProviderError) Error() string {
	if e.Message == "" {
		return e.Type
	}
	return e.Type + ": " + e.Message
}

// maxMessageBytes bounds a kept error message.
const maxMessageBytes = 1 << 10

func newProviderError(typ, msg string) *ProviderError {
	if typ == "" {
		typ = "error"
	}
	return &ProviderError{Type: clip(typ, 128), Message: clip(msg, maxMessageBytes)}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// BytesPerToken is the rule of the output estimate: a token for every
// BytesPerToken bytes of delta text, rounded up. Three is below the four
// or so bytes an English or code token takes, so the estimate leans high,
// as a budget must.
const BytesPerToken = 3

// estimateTokens is the output estimate for n bytes of delta text.
func estimateTokens(n int64) int64 {
	return (n + BytesPerToken - 1) / BytesPerToken
}

// Meter is what the gateway writes an answer into as it forwards it; it
// never fails a write and never holds bytes back.
type Meter interface {
	io.Writer
	// Result is what was read so far; call it when the answer has ended
	// (or was cut) to learn what to charge.
	Result() Result
}

// API names the wire format of an answer.
type API int

// The APIs a meter reads.
const (
	AnthropicMessages API = iota // Anthropic Messages (and Bedrock's Anthropic models)
	OpenAIResponses              // OpenAI Responses
	OpenAIChat                   // OpenAI Chat Completions
)

// New returns a meter for an answer of api, streamed as SSE or, when
// stream is false, one JSON body.
func New(api API, stream bool) Meter {
	switch {
	case api == AnthropicMessages && stream:
		return &AnthropicStream{}
	case api == AnthropicMessages:
		return &bodyMeter{parse: AnthropicJSON}
	case api == OpenAIResponses && stream:
		return &ResponsesStream{}
	case api == OpenAIResponses:
		return &bodyMeter{parse: ResponsesJSON}
	case api == OpenAIChat && stream:
		return &ChatStream{}
	case api == OpenAIChat:
		return &bodyMeter{parse: ChatJSON}
	default:
		return &bodyMeter{parse: func(body []byte) (Result, error) {
			return badBody(Result{Bytes: int64(len(body))}, fmt.Errorf("meter: unknown API %d", api))
		}}
	}
}

var (
	_ Meter = (*AnthropicStream)(nil)
	_ Meter = (*ResponsesStream)(nil)
	_ Meter = (*ChatStream)(nil)
	_ Meter = (*bodyMeter)(nil)
)
