package llm

import (
	"encoding/json"
	"net/http"

	"github.com/wardenhq/warden/shared/llm/meter"
)

var anthropicFront = front{
	api:       Anthropic,
	maxOutput: func(f *requestFields) int64 { return f.MaxTokens },
	refuse:    anthropicError,
	newMeter:  func(stream bool) meter.Meter { return meter.New(meter.AnthropicMessages, stream) },
}

// countTokensFront serves /v1/messages/count_tokens: decided like a call,
// but free, so neither priced nor metered.
var countTokensFront = front{
	api:       Anthropic,
	free:      true,
	maxOutput: func(*requestFields) int64 { return 0 },
	refuse:    anthropicError,
	newMeter:  func(bool) meter.Meter { return noMeter{} },
}

var responsesFront = front{
	api:             OpenAI,
	maxOutput:       func(f *requestFields) int64 { return f.MaxOutputTokens },
	refuse:          openAIError,
	rateLimitStatus: http.StatusForbidden,
	newMeter:        func(stream bool) meter.Meter { return meter.New(meter.OpenAIResponses, stream) },
}

var chatFront = front{
	api: OpenAI,
	maxOutput: func(f *requestFields) int64 {
		if f.MaxCompletionTokens > 0 {
			return f.MaxCompletionTokens
		}
		return f.MaxTokens
	},
	refuse:   openAIError,
	newMeter: func(stream bool) meter.Meter { return meter.New(meter.OpenAIChat, stream) },
}

// anthropicError answers in the Messages API's error format, which Claude
// Code shows: {"type":"error","error":{"type":…,"message":…}}. A 403
// stops Claude Code at once with the message; a 429 would be retried.
func anthropicError(w http.ResponseWriter, status int, message string) {
	typ := "api_error"
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		typ = "invalid_request_error"
	case http.StatusUnauthorized:
		typ = "authentication_error"
	case http.StatusForbidden:
		typ = "permission_error"
	case http.StatusNotFound:
		typ = "not_found_error"
	case http.StatusTooManyRequests:
		typ = "rate_limit_error"
	}
	writeError(w, status, map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": message}})
}

// openAIError answers in the OpenAI error format:
// {"error":{"message":…,"type":…,"code":…}}.
func openAIError(w http.ResponseWriter, status int, message string) {
	typ, code := "server_error", "warden_error"
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		typ, code = "invalid_request_error", "invalid_request"
	case http.StatusUnauthorized:
		typ, code = "invalid_request_error", "invalid_api_key"
	case http.StatusForbidden:
		typ, code = "permission_error", "warden_refused"
	case http.StatusTooManyRequests:
		typ, code = "rate_limit_error", "rate_limit_exceeded"
	}
	writeError(w, status, map[string]any{"error": map[string]any{"message": message, "type": typ, "code": code, "param": nil}})
}

func writeError(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Should-Retry", "false") // read by the Anthropic and OpenAI SDKs
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

type noMeter struct{}

func (noMeter) Write(p []byte) (int, error) { return len(p), nil }
func (noMeter) Result() meter.Result        { return meter.Result{Complete: true} }
