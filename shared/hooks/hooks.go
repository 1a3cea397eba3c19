// Package hooks is the agent-hook front end: it turns Claude Code's and
// Codex's PreToolUse / PostToolUse hook input into policy requests, runs them
// through the pipeline, and answers in the clients' hook output format.
package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/policy/shell"
)

// MaxInputBytes is the largest hook input accepted.
const MaxInputBytes = 1 << 20

// The hook events Warden handles.
const (
	PreToolUse  = "PreToolUse"
	PostToolUse = "PostToolUse"
)

// Input is a hook's JSON input, as Claude Code and Codex send it (stdin for
// command hooks, the body for http hooks). Fields Warden does not use are
// ignored: the clients add fields between versions.
type Input struct {
	SessionID     string          `json:"session_id"`
	Cwd           string          `json:"cwd"`
	HookEventName string          `json:"hook_event_name"`
	ToolName      string          `json:"tool_name"`
	ToolInput     json.RawMessage `json:"tool_input"`
	ToolUseID     string          `json:"tool_use_id"`
	ToolResponse  json.RawMessage `json:"tool_response"`
	DurationMS    *int64          `json:"duration_ms"`
}

// ErrBadInput wraps every reason an input is refused.
var ErrBadInput = errors.New("bad hook input")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, args...))
}

// Decode parses and checks hook input.
func Decode(data []byte) (*Input, error) {
	if len(data) > MaxInputBytes {
		return nil, bad("input is %d bytes; the limit is %d", len(data), MaxInputBytes)
	}
	var in Input
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&in); err != nil {
		return nil, bad("not a JSON hook input: %v", err)
	}
	if dec.More() {
		return nil, bad("trailing data after the JSON object")
	}
	switch in.HookEventName {
	case PreToolUse, PostToolUse:
	case "":
		return nil, bad("hook_event_name is missing")
	default:
		return nil, bad("hook_event_name %q is not handled; send PreToolUse and PostToolUse", in.HookEventName)
	}
	if in.ToolName == "" || len(in.ToolName) > 256 {
		return nil, bad("tool_name is missing or too long")
	}
	if len(in.ToolInput) == 0 || in.ToolInput[0] != '{' {
		return nil, bad("tool_input must be a JSON object")
	}
	if len(in.SessionID) > 256 || len(in.ToolUseID) > 256 || len(in.Cwd) > 4096 {
		return nil, bad("session_id, tool_use_id or cwd is too long")
	}
	return &in, nil
}

// shellTools are the tools whose input is a shell command line.
var shellTools = map[string]bool{"Bash": true, "exec_command": true, "shell": true, "local_shell": true}

// fileTools name the key of their tool_input that holds the path.
var fileTools = map[string]string{
	"Read": "file_path", "Edit": "file_path", "MultiEdit": "file_path", "Write": "file_path",
	"NotebookEdit": "notebook_path", "NotebookRead": "notebook_path",
	"Glob": "path", "Grep": "path", "LS": "path",
}

// Request builds the policy request for a tool call:
//   - shell tools (Bash): the command line, split into the commands it runs;
//   - file tools (Read, Edit, Write, …): the absolute, cleaned path, taken
//     relative to cwd (search tools default to cwd);
//   - WebFetch: the URL; everything else, MCP tools included, by name.
//
// It also returns the decoded tool input, for the audit record. A command
// that does not parse still yields a request that fails closed, and the
// parse error.
func (in *Input) Request() (policy.Request, map[string]any, error) {
	var args map[string]any
	if err := json.Unmarshal(in.ToolInput, &args); err != nil {
		return policy.Request{}, nil, bad("tool_input: %v", err)
	}
	req := policy.Request{Action: "tool:" + in.ToolName}
	switch {
	case shellTools[in.ToolName]:
		line, err := commandLine(args)
		if err != nil {
			return policy.Request{}, nil, err
		}
		req.Action = "tool:Bash"
		req.Resource = line
		cmds, perr := policy.Commands(line)
		req.Commands = cmds
		return req, args, perr
	case fileTools[in.ToolName] != "":
		p, _ := args[fileTools[in.ToolName]].(string)
		if p == "" && (in.ToolName == "Glob" || in.ToolName == "Grep" || in.ToolName == "LS") {
			p = in.Cwd
		}
		req.Resource = absPath(in.Cwd, p)
	case in.ToolName == "WebFetch":
		req.Resource, _ = args["url"].(string)
	}
	return req, args, nil
}

// commandLine finds the command of a shell tool: a string "command" (Claude
// Code, Codex hooks), or "cmd" as a string or an argv list (Codex's own
// tool names).
func commandLine(args map[string]any) (string, error) {
	for _, key := range []string{"command", "cmd"} {
		switch v := args[key].(type) {
		case string:
			return v, nil
		case []any:
			words := make([]string, len(v))
			for i, w := range v {
				s, ok := w.(string)
				if !ok {
					return "", bad("tool_input.%s must be a list of strings", key)
				}
				words[i] = shell.Quote(s)
			}
			return strings.Join(words, " "), nil
		}
	}
	return "", bad("a shell tool call without tool_input.command")
}

// absPath resolves p against cwd and cleans it, so that ../ cannot walk a
// path out of a pattern such as /workspace/*.
func absPath(cwd, p string) string {
	if p == "" {
		return ""
	}
	if !path.IsAbs(p) {
		p = path.Join(cwd, p)
	}
	return path.Clean(p)
}

// Output is Claude Code's hook decision, which Codex also reads.
type Output struct {
	HookSpecificOutput *SpecificOutput `json:"hookSpecificOutput,omitempty"`
	// Error explains a refusal of the hook call itself (bad input, bad
	// token); clients see it when they show the hook's failure.
	Error string `json:"error,omitempty"`
}

// SpecificOutput is the PreToolUse decision.
type SpecificOutput struct {
	HookEventName            string `json:"hookEventName"`
	PermissionDecision       string `json:"permissionDecision"`
	PermissionDecisionReason string `json:"permissionDecisionReason,omitempty"`
}

// ApprovalHeader names, on a PreToolUse refusal, the approval the request
// waits on: `warden hook` waits for it to be decided and asks again.
const ApprovalHeader = "X-Warden-Approval"

// Allow and Deny build PreToolUse answers.
func Allow(reason string) Output {
	return Output{HookSpecificOutput: &SpecificOutput{HookEventName: PreToolUse, PermissionDecision: "allow", PermissionDecisionReason: reason}}
}

// Deny builds a PreToolUse answer that blocks the tool.
func Deny(reason string) Output {
	return Output{HookSpecificOutput: &SpecificOutput{HookEventName: PreToolUse, PermissionDecision: "deny", PermissionDecisionReason: reason}}
}

// Defer builds a PreToolUse answer that ends Claude Code's `-p` run with
// the tool call deferred (terminal_reason "tool_deferred"); `claude -p
// --resume SESSION` asks again for the same call.
func Defer(reason string) Output {
	return Output{HookSpecificOutput: &SpecificOutput{HookEventName: PreToolUse, PermissionDecision: "defer", PermissionDecisionReason: reason}}
}
