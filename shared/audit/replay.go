package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event is one step of a session's timeline, for `warden audit replay`
// and the dashboard.
type Event struct {
	Seq    int64         `json:"seq"`
	Time   time.Time     `json:"time"`
	Offset time.Duration `json:"offset_ns"` // since the session's first record
	// Kind is login, tool, llm, aws, refused, kill, pause, resume,
	// approval, budget or watchdog.
	Kind     string `json:"kind"`
	Action   string `json:"action,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Decision is allow, deny or approve, for requests.
	Decision string `json:"decision,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Status and DurationMS are the outcome of an allowed tool call.
	Status     string `json:"status,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	Actor      string `json:"actor,omitempty"`
	Ref        string `json:"ref,omitempty"`
	// ClientSession is the agent's own session ID.
	ClientSession string `json:"client_session,omitempty"`
	// Usage is what a model call consumed, once it ended.
	Usage *Usage `json:"usage,omitempty"`
}

// Replay turns a session's records, in order, into its timeline: each
// tool or model call once, with its decision and, when it ran, its outcome
// or usage; approvals with who decided; budget and watchdog events; the
// kill.
func Replay(records []Record) []Event {
	var out []Event
	byRef := map[string]int{} // tool_use_id or call ID -> index in out
	var start time.Time
	for _, r := range records {
		if start.IsZero() {
			start = r.Time
		}
		if r.Code == ToolOutcome || r.Code == LLMUsage || r.Code == AWSCredentials {
			if i, ok := byRef[r.Ref]; ok && r.Ref != "" {
				out[i].Status, out[i].DurationMS = r.Status, r.DurationMS
				out[i].Usage = usageOf(r)
				continue
			}
		}
		e := Event{Seq: r.Seq, Time: r.Time, Offset: r.Time.Sub(start), Action: r.Action, Resource: r.Resource,
			Rule: r.Rule, Reason: r.Reason, Actor: r.Actor, Ref: r.Ref, ClientSession: r.ClientSession,
			Status: r.Status, DurationMS: r.DurationMS}
		domain, what, _ := strings.Cut(string(r.Code), ".")
		switch {
		case r.Code == SessionLogin:
			e.Kind = "login"
		case r.Code == SessionKilled || r.Code == AgentKilled || r.Code == ProjectFrozen:
			e.Kind = "kill"
		case r.Code == SessionPaused:
			e.Kind = "pause"
		case r.Code == SessionResumed:
			e.Kind = "resume"
		case r.Code == RequestRefused:
			e.Kind, e.Decision = "refused", "deny"
		case domain == "decision" && r.Kind == "aws":
			e.Kind, e.Decision = "aws", r.Effect
		case domain == "decision":
			e.Kind, e.Decision = kindOfAction(r.Action), r.Effect
		case r.Code == ToolOutcome:
			e.Kind = "tool"
		case r.Code == LLMUsage:
			e.Kind, e.Usage = "llm", usageOf(r)
		case domain == "approval", domain == "budget", domain == "watchdog":
			e.Kind, e.Status = domain, what
		default:
			e.Kind = domain
		}
		if r.Ref != "" && r.Code != ToolOutcome && r.Code != LLMUsage && r.Code != AWSCredentials && r.Code != AWSCall && e.Kind != "approval" {
			byRef[r.Ref] = len(out)
		}
		out = append(out, e)
	}
	return out
}

// usageOf reads the Usage in an llm.usage record; nil for other records
// or a record whose Args are not one.
func usageOf(r Record) *Usage {
	if r.Code != LLMUsage || len(r.Args) == 0 {
		return nil
	}
	var u Usage
	if json.Unmarshal(r.Args, &u) != nil {
		return nil
	}
	return &u
}

func kindOfAction(action string) string {
	switch {
	case strings.HasPrefix(action, "tool:"):
		return "tool"
	case strings.HasPrefix(action, "llm:"):
		return "llm"
	}
	return "request"
}

// String renders the event as one line of a terminal timeline.
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%+9.3fs  %-8s", e.Offset.Seconds(), e.Kind)
	switch e.Kind {
	case "approval", "budget", "watchdog":
		fmt.Fprintf(&b, " %s", e.Status)
		if e.Kind == "approval" {
			fmt.Fprintf(&b, " %s", e.Ref)
		}
		if e.Resource != "" {
			fmt.Fprintf(&b, " %q", e.Resource)
		}
		if e.Actor != "" && e.Kind == "approval" {
			fmt.Fprintf(&b, " by %s", e.Actor)
		}
		if e.Reason != "" {
			fmt.Fprintf(&b, ": %s", e.Reason)
		}
		return b.String()
	}
	if e.Action != "" {
		fmt.Fprintf(&b, " %s", strings.TrimPrefix(strings.TrimPrefix(e.Action, "tool:"), "llm:"))
	}
	if e.Resource != "" {
		fmt.Fprintf(&b, " %q", e.Resource)
	}
	switch e.Decision {
	case "allow":
		switch {
		case e.Rule != "":
			fmt.Fprintf(&b, "  allowed (%s)", e.Rule)
		case e.Reason != "":
			fmt.Fprintf(&b, "  allowed: %s", e.Reason)
		default:
			b.WriteString("  allowed")
		}
	case "approve":
		fmt.Fprintf(&b, "  needs approval (%s)", e.Rule)
	case "deny":
		if e.Rule != "" {
			fmt.Fprintf(&b, "  denied (%s)", e.Rule)
		} else {
			fmt.Fprintf(&b, "  refused: %s", e.Reason)
		}
	}
	if u := e.Usage; u != nil {
		fmt.Fprintf(&b, "  → %d in / %d out", u.InputTokens, u.OutputTokens)
		if u.CacheReadTokens+u.CacheWrite5mTokens+u.CacheWrite1hTokens > 0 {
			fmt.Fprintf(&b, " (cache: %d read, %d written)", u.CacheReadTokens, u.CacheWrite5mTokens+u.CacheWrite1hTokens)
		}
		fmt.Fprintf(&b, ", $%s", u.CostUSD)
		if u.Estimated {
			b.WriteString(" (estimated)")
		}
		if e.DurationMS > 0 {
			fmt.Fprintf(&b, " in %dms", e.DurationMS)
		}
	} else if e.Status != "" && e.DurationMS > 0 {
		fmt.Fprintf(&b, "  → %s in %dms", e.Status, e.DurationMS)
	} else if e.Status != "" {
		fmt.Fprintf(&b, "  → %s", e.Status)
	}
	switch e.Kind {
	case "kill", "pause":
		fmt.Fprintf(&b, " by %s: %s", e.Actor, e.Reason)
	case "resume":
		fmt.Fprintf(&b, " by %s", e.Actor)
	}
	return strings.TrimRight(b.String(), " ")
}
