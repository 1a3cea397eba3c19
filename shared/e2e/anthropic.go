package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// claudeShellTool is the name of Claude Code's shell tool; a request that offers it is part of
// the scripted conversation.
const claudeShellTool = "Bash"

type anthropicRequest struct {
	Model    string             `json:"model"`
	Stream   bool               `json:"stream"`
	Messages []anthropicMessage `json:"messages"`
	Tools    []struct {
		Name string `json:"name"`
	} `json:"tools"`
}

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicBlock struct {
	Type      string `json:"type"`
	ToolUseID string `json:"tool_use_id"`
	Content   any    `json:"content"`
	IsError   bool   `json:"is_error"`
}

// blocks decodes a message's content, which is a string or a list of blocks; a string has no
// tool results, so it decodes to none.
func (m anthropicMessage) blocks() []anthropicBlock {
	var bs []anthropicBlock
	if err := json.Unmarshal(m.Content, &bs); err != nil {
		return nil
	}
	return bs
}

func (r anthropicRequest) offers(tool string) bool {
	for _, t := range r.Tools {
		if t.Name == tool {
			return true
		}
	}
	return false
}

// anthropicToolResults extracts the tool_result blocks of a Messages request body.
func anthropicToolResults(body []byte) []ToolResult {
	var req anthropicRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil
	}
	var out []ToolResult
	for _, m := range req.Messages {
		for _, b := range m.blocks() {
			if b.Type == "tool_result" {
				out = append(out, ToolResult{CallID: b.ToolUseID, Output: flattenText(b.Content), IsError: b.IsError})
			}
		}
	}
	return out
}

func anthropicError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{
		"type":  "error",
		"error": map[string]any{"type": typ, "message": msg},
	})
}

func (s *ModelStub) serveCountTokens(w http.ResponseWriter, rec *Request) {
	rec.Usage = Usage{InputTokens: estimateTokens(len(rec.Body))}
	s.record(*rec)
	writeJSON(w, http.StatusOK, map[string]any{"input_tokens": rec.Usage.InputTokens})
}

func (s *ModelStub) serveAnthropic(w http.ResponseWriter, rec *Request) {
	var req anthropicRequest
	if err := json.Unmarshal(rec.Body, &req); err != nil {
		s.record(*rec)
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("decode request: %v", err))
		return
	}
	rec.Stream = req.Stream
	model := req.Model
	if model == "" {
		model = "claude-e2e"
	}

	var t turn
	if req.offers(claudeShellTool) {
		results := map[string]bool{}
		for _, tr := range anthropicToolResults(rec.Body) {
			results[tr.CallID] = true
		}
		t = s.nextTurn(APIAnthropic, len(req.Messages), results)
	} else {
		rec.Side = true
		t = turn{step: -1, text: sideText}
	}
	rec.Step = t.step

	var content []map[string]any
	stop := "end_turn"
	if t.command != "" {
		stop = "tool_use"
		content = append(content, map[string]any{
			"type":  "tool_use",
			"id":    t.callID,
			"name":  claudeShellTool,
			"input": map[string]any{"command": t.command, "description": "Run " + t.command},
		})
	} else {
		content = append(content, map[string]any{"type": "text", "text": t.text})
	}
	rec.Usage = s.usageFor(estimateTokens(len(rec.Body)), estimateTokens(len(t.text)+2*len(t.command))+24, !rec.Side)
	msgID := fmt.Sprintf("msg_e2e%s%03d", s.nonce, s.record(*rec))
	if !req.Stream {
		writeJSON(w, http.StatusOK, map[string]any{
			"id":            msgID,
			"type":          "message",
			"role":          "assistant",
			"model":         model,
			"content":       content,
			"stop_reason":   stop,
			"stop_sequence": nil,
			"usage":         anthropicUsage(rec.Usage, rec.Usage.OutputTokens),
		})
		return
	}

	sw := newSSEWriter(w)
	sw.event("message_start", map[string]any{
		"type": "message_start",
		"message": map[string]any{
			"id":            msgID,
			"type":          "message",
			"role":          "assistant",
			"model":         model,
			"content":       []any{},
			"stop_reason":   nil,
			"stop_sequence": nil,
			"usage":         anthropicUsage(rec.Usage, 1),
		},
	})
	sw.event("ping", map[string]any{"type": "ping"})
	for i, c := range content {
		switch c["type"] {
		case "tool_use":
			input, _ := json.Marshal(c["input"])
			sw.event("content_block_start", map[string]any{
				"type":          "content_block_start",
				"index":         i,
				"content_block": map[string]any{"type": "tool_use", "id": c["id"], "name": c["name"], "input": map[string]any{}},
			})
			sw.event("content_block_delta", map[string]any{
				"type":  "content_block_delta",
				"index": i,
				"delta": map[string]any{"type": "input_json_delta", "partial_json": string(input)},
			})
		default:
			sw.event("content_block_start", map[string]any{
				"type":          "content_block_start",
				"index":         i,
				"content_block": map[string]any{"type": "text", "text": ""},
			})
			sw.event("content_block_delta", map[string]any{
				"type":  "content_block_delta",
				"index": i,
				"delta": map[string]any{"type": "text_delta", "text": c["text"]},
			})
		}
		sw.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": i})
	}
	sw.event("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": anthropicUsage(rec.Usage, rec.Usage.OutputTokens),
	})
	sw.event("message_stop", map[string]any{"type": "message_stop"})
}

// anthropicUsage renders u with output tokens so far, as message_start (1) and message_delta
// (all, cumulative) carry it.
func anthropicUsage(u Usage, output int) map[string]any {
	return map[string]any{
		"input_tokens":                u.InputTokens,
		"cache_creation_input_tokens": u.CacheCreationInputTokens,
		"cache_read_input_tokens":     u.CacheReadInputTokens,
		"cache_creation": map[string]any{
			"ephemeral_5m_input_tokens": u.CacheCreationInputTokens,
			"ephemeral_1h_input_tokens": 0,
		},
		"output_tokens": output,
		"service_tier":  "standard",
	}
}
