package policy

import (
	"strings"
	"time"

	"github.com/wardenhq/warden/policy/shell"
)

// Principal is who makes a request: an agent session within a project.
type Principal struct {
	Project string
	Agent   string
	Session string
	Labels  map[string]string
}

// Request is one normalized action that an enforcement point asks about.
// Every front end (LLM gateway, credential broker, git proxy, hooks) builds
// one and hands it to Evaluate.
type Request struct {
	Principal Principal
	// Action is "<kind or service>:<name>": git:push, s3:GetObject,
	// llm:invoke, tool:Bash, mcp:<server>/<tool>, http:GET.
	Action string
	// Resource is what the action touches: host/org/repo:refs/heads/main, an
	// ARN, provider/model, a file path, or a tool's command line.
	Resource string
	// Commands holds the simple commands of a shell tool's command line, as
	// returned by Commands. It is nil for every other request.
	Commands []shell.Command
	// Time is when the request was made. The engine never reads the clock;
	// conditions that use time fail (closed) when it is zero.
	Time time.Time
	// Attributes are further facts about the request (sizes, counts) that
	// conditions may use as attrs.<name>.
	Attributes map[string]any
}

// Commands splits a shell command line into Request.Commands. When the line
// cannot be parsed it still returns one command, with no literal prefix,
// which every deny and approve command pattern matches and no allow pattern
// except "*" does (fail closed), together with the parse error.
func Commands(line string) ([]shell.Command, error) {
	cmds, err := shell.Split(line)
	if err != nil {
		return []shell.Command{{Args: []string{line}, Line: line, Dynamic: true}}, err
	}
	if len(cmds) == 0 {
		// A line of only assignments or comments runs nothing, but it is
		// still a call of the tool: check it as an empty command.
		return []shell.Command{{Line: ""}}, nil
	}
	return cmds, nil
}

// Kind is the family of an action, which fixes its resource format.
type Kind uint8

// The kinds of action.
const (
	KindUnknown Kind = iota
	KindGit
	KindAWS
	KindLLM
	KindTool
	KindMCP
	KindHTTP
	kindAny // the rule action "*"
)

var kindNames = [...]string{"unknown", "git", "aws", "llm", "tool", "mcp", "http", "any"}

// String returns the kind's name as written in policies and audit records.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// KindOf returns the kind of an action from its prefix: git:, llm:, tool:,
// mcp: and http: name their kinds; any other service prefix is an AWS action.
func KindOf(action string) Kind {
	service, _, ok := strings.Cut(action, ":")
	if !ok || service == "" {
		return KindUnknown
	}
	switch service {
	case "git":
		return KindGit
	case "llm":
		return KindLLM
	case "tool":
		return KindTool
	case "mcp":
		return KindMCP
	case "http":
		return KindHTTP
	}
	return KindAWS
}

// Effect is the outcome of evaluating a request.
type Effect uint8

// The effects. The zero value is Deny, so a forgotten decision denies.
const (
	Deny Effect = iota
	Allow
	Approve
)

// String returns "deny", "allow" or "approve".
func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case Approve:
		return "approve"
	}
	return "deny"
}

// rank orders effects for precedence: a matching deny beats approve, which
// beats allow.
func (e Effect) rank() int {
	switch e {
	case Deny:
		return 3
	case Approve:
		return 2
	}
	return 1
}

// Decision is the engine's answer for one request, and why.
type Decision struct {
	Effect Effect
	// Rule is the ID of the deciding rule; empty for the default deny.
	Rule string
	// Pos is where the deciding rule is written.
	Pos Position
	// Reason explains the decision for a person.
	Reason string
	// Command is, for a shell request, the command of the chain that
	// decided (the first one denied, not covered, or needing approval).
	Command string
}

// DefaultDenyReason is the reason of a decision no rule made.
const DefaultDenyReason = "no rule allows this request (deny by default)"
