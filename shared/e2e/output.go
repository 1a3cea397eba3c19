package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
)

// ClaudeOutput is the part of the result object printed by `claude -p --output-format json`
// that tests look at.
type ClaudeOutput struct {
	Type              string             `json:"type"`
	Subtype           string             `json:"subtype"`
	IsError           bool               `json:"is_error"`
	Result            string             `json:"result"`
	SessionID         string             `json:"session_id"`
	NumTurns          int                `json:"num_turns"`
	StopReason        string             `json:"stop_reason"`
	TerminalReason    string             `json:"terminal_reason"`
	APIErrorStatus    *int               `json:"api_error_status"`
	PermissionDenials []PermissionDenial `json:"permission_denials"`
}

// PermissionDenial is a tool call that Claude Code did not run, for example because a
// PreToolUse hook denied it.
type PermissionDenial struct {
	ToolName  string         `json:"tool_name"`
	ToolUseID string         `json:"tool_use_id"`
	ToolInput map[string]any `json:"tool_input"`
}

// ParseClaudeOutput decodes the JSON result that `claude -p --output-format json` printed.
func ParseClaudeOutput(stdout string) (ClaudeOutput, error) {
	var out ClaudeOutput
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &out); err != nil {
		return ClaudeOutput{}, fmt.Errorf("decode claude -p output: %w", err)
	}
	return out, nil
}

// CodexEvent is one line of `codex exec --json` output.
type CodexEvent struct {
	// Type is e.g. thread.started, turn.started, item.started, item.completed, turn.completed.
	Type     string         `json:"type"`
	ThreadID string         `json:"thread_id"`
	Item     *CodexItem     `json:"item"`
	Usage    map[string]int `json:"usage"`
}

// CodexItem is the item of an item.* event.
type CodexItem struct {
	ID string `json:"id"`
	// Type is e.g. command_execution, agent_message, error.
	Type             string `json:"type"`
	Command          string `json:"command"`
	AggregatedOutput string `json:"aggregated_output"`
	ExitCode         *int   `json:"exit_code"`
	Status           string `json:"status"`
	Text             string `json:"text"`
	Message          string `json:"message"`
}

// ParseCodexEvents decodes the JSON lines that `codex exec --json` printed.
func ParseCodexEvents(stdout string) ([]CodexEvent, error) {
	var events []CodexEvent
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var ev CodexEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			return nil, fmt.Errorf("decode codex exec --json line %d: %w", n, err)
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read codex exec --json output: %w", err)
	}
	return events, nil
}
