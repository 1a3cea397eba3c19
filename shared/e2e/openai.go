package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

type openAIRequest struct {
	Model  string            `json:"model"`
	Stream bool              `json:"stream"`
	Input  []json.RawMessage `json:"input"`
	Tools  []openAITool      `json:"tools"`
}

// openAITool is a tool the request offers; namespaces nest further tools.
type openAITool struct {
	Type  string       `json:"type"`
	Name  string       `json:"name"`
	Tools []openAITool `json:"tools"`
}

type openAIInputItem struct {
	Type   string       `json:"type"`
	CallID string       `json:"call_id"`
	Output any          `json:"output"`
	Tools  []openAITool `json:"tools"` // of an additional_tools item
}

// openAIShellCall is an output item that asks Codex to run a command, without its ids.
type openAIShellCall struct {
	itemType string // function_call or custom_tool_call
	name     string
	field    string // arguments (JSON) or input (free-form)
	value    string
}

// offered lists the tools a request offers, by type and name: the top-level tools, and those of
// additional_tools input items (Codex's code mode puts them there), namespaces flattened.
func (r openAIRequest) offered() map[string]bool {
	out := map[string]bool{}
	var walk func([]openAITool)
	walk = func(ts []openAITool) {
		for _, t := range ts {
			out[t.Type+"/"+t.Name] = true
			walk(t.Tools)
		}
	}
	walk(r.Tools)
	for _, raw := range r.Input {
		var it openAIInputItem
		if json.Unmarshal(raw, &it) == nil && it.Type == "additional_tools" {
			walk(it.Tools)
		}
	}
	return out
}

// shellCall returns the call that asks Codex to run command with the shell tool the request
// offers: the exec_command function {"cmd"} (Codex 0.169 with gpt-5.5), else shell_command
// {"command": string}, else shell {"command": argv}, else, in code mode, the custom "exec" tool
// with JavaScript that calls tools.exec_command. ok is false if it offers none of them.
func (r openAIRequest) shellCall(command string) (call openAIShellCall, ok bool) {
	offered := r.offered()
	var args any
	switch {
	case offered["function/exec_command"]:
		call.name, args = "exec_command", map[string]any{"cmd": command}
	case offered["function/shell_command"]:
		call.name, args = "shell_command", map[string]any{"command": command}
	case offered["function/shell"]:
		call.name, args = "shell", map[string]any{"command": []string{"bash", "-lc", command}}
	case offered["custom/exec"]:
		arg, err := json.Marshal(map[string]any{"cmd": command})
		if err != nil {
			return call, false
		}
		js := fmt.Sprintf("const r = await tools.exec_command(%s);\ntext(typeof r === \"string\" ? r : JSON.stringify(r));\n", arg)
		return openAIShellCall{itemType: "custom_tool_call", name: "exec", field: "input", value: js}, true
	default:
		return call, false
	}
	b, err := json.Marshal(args)
	if err != nil {
		return call, false
	}
	call.itemType, call.field, call.value = "function_call", "arguments", string(b)
	return call, true
}

// openAIToolResults extracts the function_call_output items of a Responses request body.
func openAIToolResults(body []byte) []ToolResult {
	var req openAIRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil
	}
	var out []ToolResult
	for _, raw := range req.Input {
		var it openAIInputItem
		if err := json.Unmarshal(raw, &it); err != nil {
			continue
		}
		if it.Type == "function_call_output" || it.Type == "custom_tool_call_output" {
			out = append(out, ToolResult{CallID: it.CallID, Output: flattenText(it.Output)})
		}
	}
	return out
}

func (s *ModelStub) serveOpenAI(w http.ResponseWriter, rec *Request) {
	var req openAIRequest
	if err := json.Unmarshal(rec.Body, &req); err != nil {
		s.record(*rec)
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error": map[string]any{"type": "invalid_request_error", "message": fmt.Sprintf("decode request: %v", err)},
		})
		return
	}
	rec.Stream = req.Stream
	model := req.Model
	if model == "" {
		model = "gpt-e2e"
	}

	var t turn
	call, ok := req.shellCall("true")
	if ok {
		results := map[string]bool{}
		for _, tr := range openAIToolResults(rec.Body) {
			results[tr.CallID] = true
		}
		t = s.nextTurn(APIOpenAI, len(req.Input), results)
	} else {
		rec.Side = true
		t = turn{step: -1, text: sideText}
	}
	rec.Step = t.step

	rec.Usage = s.usageFor(estimateTokens(len(rec.Body)), estimateTokens(len(t.text)+len(t.command))+24, !rec.Side)
	n := s.record(*rec)
	respID := fmt.Sprintf("resp_e2e%s%03d", s.nonce, n)
	var item map[string]any
	if t.command != "" {
		call, _ = req.shellCall(t.command)
		item = map[string]any{
			"type":     call.itemType,
			"id":       "fc_" + t.callID,
			"call_id":  t.callID,
			"name":     call.name,
			call.field: call.value,
			"status":   "completed",
		}
	} else {
		item = map[string]any{
			"type":   "message",
			"id":     fmt.Sprintf("msg_e2e%s%03d", s.nonce, n),
			"role":   "assistant",
			"status": "completed",
			"content": []any{map[string]any{
				"type": "output_text", "text": t.text, "annotations": []any{},
			}},
		}
	}
	created := time.Now().Unix()
	response := func(status string, output []any, usage any) map[string]any {
		return map[string]any{
			"id":         respID,
			"object":     "response",
			"created_at": created,
			"status":     status,
			"model":      model,
			"output":     output,
			"usage":      usage,
		}
	}
	final := response("completed", []any{item}, openAIUsage(rec.Usage))
	if !req.Stream {
		writeJSON(w, http.StatusOK, final)
		return
	}

	sw := newSSEWriter(w)
	seq := 0
	emit := func(name string, data map[string]any) {
		data["type"] = name
		data["sequence_number"] = seq
		seq++
		sw.event(name, data)
	}
	emit("response.created", map[string]any{"response": response("in_progress", []any{}, nil)})
	emit("response.in_progress", map[string]any{"response": response("in_progress", []any{}, nil)})
	if t.command != "" {
		added := map[string]any{}
		for k, v := range item {
			added[k] = v
		}
		added[call.field], added["status"] = "", "in_progress"
		emit("response.output_item.added", map[string]any{"output_index": 0, "item": added})
		if call.itemType == "function_call" {
			emit("response.function_call_arguments.delta", map[string]any{"item_id": item["id"], "output_index": 0, "delta": call.value})
			emit("response.function_call_arguments.done", map[string]any{"item_id": item["id"], "output_index": 0, "arguments": call.value})
		} else {
			emit("response.custom_tool_call_input.delta", map[string]any{"item_id": item["id"], "output_index": 0, "delta": call.value})
			emit("response.custom_tool_call_input.done", map[string]any{"item_id": item["id"], "output_index": 0, "input": call.value})
		}
	} else {
		part := map[string]any{"type": "output_text", "text": t.text, "annotations": []any{}}
		emit("response.output_item.added", map[string]any{"output_index": 0, "item": map[string]any{
			"type": "message", "id": item["id"], "role": "assistant", "status": "in_progress", "content": []any{},
		}})
		emit("response.content_part.added", map[string]any{"item_id": item["id"], "output_index": 0, "content_index": 0,
			"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
		emit("response.output_text.delta", map[string]any{"item_id": item["id"], "output_index": 0, "content_index": 0, "delta": t.text})
		emit("response.output_text.done", map[string]any{"item_id": item["id"], "output_index": 0, "content_index": 0, "text": t.text})
		emit("response.content_part.done", map[string]any{"item_id": item["id"], "output_index": 0, "content_index": 0, "part": part})
	}
	emit("response.output_item.done", map[string]any{"output_index": 0, "item": item})
	emit("response.completed", map[string]any{"response": final})
}

// openAIUsage renders u as a Responses usage object.
func openAIUsage(u Usage) map[string]any {
	input := u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
	return map[string]any{
		"input_tokens":          input,
		"input_tokens_details":  map[string]any{"cached_tokens": u.CacheReadInputTokens},
		"output_tokens":         u.OutputTokens,
		"output_tokens_details": map[string]any{"reasoning_tokens": 0},
		"total_tokens":          input + u.OutputTokens,
	}
}
