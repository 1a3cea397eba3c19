package policy

import (
	"time"

	"github.com/wardenhq/warden/policy/channel"
)

// The declarations below are the policy file's schema. The decoder, the
// validator and `warden policy schema` are all driven by these types and their
// tags, so the file format is defined in exactly one place:
//
//	policy:"name[,required]"  the YAML key
//	enum:"a,b,c"              the allowed values of a string
//	doc:"…"                   the description shown by editors

// File is a policy file as written, before validation.
type File struct {
	Version       int                     `policy:"version,required" schema:"const=1" doc:"Policy language version. Must be 1."`
	Projects      map[string]ProjectDecl  `policy:"projects" doc:"The projects agents work in, with their agents and labels. Optional; when present, rules may only name declared projects."`
	Rules         []RuleDecl              `policy:"rules" doc:"Allow, deny and approve rules. Deny by default: a request no rule allows is denied."`
	Budgets       []BudgetDecl            `policy:"budgets" doc:"Token and dollar budgets, with alert thresholds."`
	RateLimits    []RateLimitDecl         `policy:"rate_limits" doc:"Request rate limits."`
	Watchdog      *WatchdogDecl           `policy:"watchdog" doc:"Thresholds that trip a session's breaker when it loops or runs away."`
	Approvers     map[string]ApproverDecl `policy:"approvers" doc:"Approver groups: who may decide which approve rules, and for how long an approval holds."`
	Notifications map[string]ChannelDecl  `policy:"notifications" doc:"Notification channels, referred to by name from budgets, the watchdog and approver groups."`
	AWS           *AWSDecl                `policy:"aws" doc:"The AWS credentials Warden's broker issues to sessions."`
}

// AWSDecl configures the AWS credentials the broker issues.
type AWSDecl struct {
	CredentialTTL Duration `policy:"credential_ttl" doc:"The longest an issued credential lives (never past its session's end), 15m to 12h. Default 1h."`
}

// ProjectDecl declares a project and the agents that work in it.
type ProjectDecl struct {
	Description string               `policy:"description" doc:"What the project is, for people."`
	Labels      map[string]string    `policy:"labels" doc:"Labels every session of the project carries."`
	Agents      map[string]AgentDecl `policy:"agents" doc:"The project's agents by name."`
}

// AgentDecl declares one agent of a project.
type AgentDecl struct {
	Description string            `policy:"description" doc:"What the agent does, for people."`
	Labels      map[string]string `policy:"labels" doc:"Labels the agent's sessions carry, on top of the project's."`
}

// WhoDecl selects principals. Every given field must match; an absent field
// matches everyone. Names are glob patterns (* and ?).
type WhoDecl struct {
	Project StringList        `policy:"project" doc:"Project name patterns; any one may match."`
	Agent   StringList        `policy:"agent" doc:"Agent name patterns; any one may match."`
	Labels  map[string]string `policy:"labels" doc:"Label patterns; every listed label must be present and match."`
}

// RuleDecl is one rule.
type RuleDecl struct {
	ID          string     `policy:"id" doc:"Stable identifier used in decisions, audit and approvals. Derived from the rule's content when absent."`
	Description string     `policy:"description" doc:"Why the rule exists; shown in denials and approval requests."`
	Effect      string     `policy:"effect,required" enum:"allow,deny,approve" doc:"allow, deny (always wins), or approve (allowed once a human approves)."`
	Who         WhoDecl    `policy:"who" doc:"Which principals the rule applies to. Absent: all."`
	Action      StringList `policy:"action,required" doc:"Action patterns, one kind per rule: git:push, s3:GetObject, s3:Get*, llm:invoke, tool:Bash, mcp:…, http:…, or * for every action."`
	Resource    StringList `policy:"resource" doc:"Resource patterns. git: host/org/repo:refs/heads/branch; aws: ARNs with IAM wildcards; llm: provider/model; tool: file paths. Absent: any resource."`
	Command     StringList `policy:"command" doc:"Shell command patterns for shell tools (tool:Bash). Each command of a chain is checked on its own."`
	IgnoreCase  bool       `policy:"ignore_case" doc:"Match command patterns regardless of ASCII letter case, e.g. for SQL keywords."`
	When        string     `policy:"when" doc:"CEL condition over the request: project, agent, session, labels, kind, action, resource, time, attrs."`
}

// BudgetDecl caps spending over a period.
type BudgetDecl struct {
	ID     string     `policy:"id" doc:"Stable identifier used in alerts and audit. Derived when absent."`
	Scope  string     `policy:"scope,required" enum:"project,agent,session" doc:"What one budget counter covers: each project, each agent, or each session."`
	Who    WhoDecl    `policy:"who" doc:"Which principals the budget applies to. Absent: all."`
	Period string     `policy:"period,required" enum:"hour,day,month" doc:"The window the budget resets on (UTC)."`
	USD    float64    `policy:"usd" doc:"Hard cap in US dollars per period."`
	Tokens int64      `policy:"tokens" doc:"Hard cap in tokens (input + output + cache) per period."`
	Alerts []int      `policy:"alerts" doc:"Percentages of the cap at which to alert, ascending, e.g. [50, 80, 100]."`
	Notify StringList `policy:"notify" doc:"Notification channels that receive alerts."`
}

// RateLimitDecl caps the request rate, the token rate, or both.
type RateLimitDecl struct {
	ID       string     `policy:"id" doc:"Stable identifier. Derived when absent."`
	Scope    string     `policy:"scope,required" enum:"project,agent,session" doc:"What one counter covers."`
	Who      WhoDecl    `policy:"who" doc:"Which principals the limit applies to. Absent: all."`
	Action   StringList `policy:"action" doc:"Action patterns counted. Absent: every action."`
	Requests int        `policy:"requests" doc:"Requests allowed per window. A limit sets requests, tokens or both."`
	Tokens   int64      `policy:"tokens" doc:"Tokens (input + output + cache) allowed per window. A call made once they are used up is refused until the window frees some."`
	Per      Duration   `policy:"per,required" doc:"The window, e.g. 1m."`
	Burst    int        `policy:"burst" doc:"Extra requests allowed in a burst, on top of requests. Default 0."`
}

// WatchdogDecl trips a session's breaker when it behaves like a runaway
// loop. Each signal has two levels: at the alert level the watchdog records
// an alert and notifies; at the pause level it pauses the session (or kills
// it, with on_trip: kill) until a human resumes it.
type WatchdogDecl struct {
	RepeatedCalls         LevelsDecl `policy:"repeated_calls" doc:"Identical requests (same action, resource and arguments) from one session within the window. A number is the pause level, with an alert at half of it; or {alert: N, pause: M}. At most 100."`
	UpstreamErrors        LevelsDecl `policy:"upstream_errors" doc:"Model calls in a row that the provider answered 429 or 5xx. A number is the pause level, with an alert at half of it; or {alert: N, pause: M}."`
	TokensPerMinute       LevelsDecl `policy:"tokens_per_minute" doc:"Tokens (input + output + cache) one session uses in the last minute. A number is the pause level, with an alert at half of it; or {alert: N, pause: M}."`
	Window                Duration   `policy:"window" doc:"The window for repeated_calls, and how long a level stays quiet after it fired. Default 5m."`
	MaxRequestsPerMinute  LevelsDecl `policy:"max_requests_per_minute" doc:"Requests from one session in the last minute. A number is the pause level, with an alert at half of it; or {alert: N, pause: M}."`
	MaxConsecutiveDenials LevelsDecl `policy:"max_consecutive_denials" doc:"Requests in a row the policy denied. A number is the pause level, with an alert at half of it; or {alert: N, pause: M}."`
	MaxSessionDuration    Duration   `policy:"max_session_duration" doc:"Longest a session may run before it is paused."`
	OnTrip                string     `policy:"on_trip" enum:"pause,kill" doc:"What the pause level does: pause (a human may resume) or kill the session. Default pause."`
	Notify                StringList `policy:"notify" doc:"Notification channels told of alerts and trips."`
}

// LevelsDecl is a watchdog signal's two levels, written either as one
// number, the pause level (the alert level is then half of it, rounded
// up), or as a mapping {alert: N, pause: M} where either may be left out.
type LevelsDecl struct {
	Alert int64 `policy:"alert" doc:"The count at which the watchdog alerts: an audit record and a notification."`
	Pause int64 `policy:"pause" doc:"The count at which the watchdog pauses the session (kills it, with on_trip: kill)."`
	// Short is set when the levels were written as one number.
	Short bool
}

// ApproverDecl is a group of people who may decide approvals.
type ApproverDecl struct {
	Description string     `policy:"description" doc:"Who the group is, for people."`
	Slack       StringList `policy:"slack" doc:"Slack user IDs (U…, W…) or user group IDs (S…)."`
	Telegram    StringList `policy:"telegram" doc:"Telegram user IDs."`
	Rules       StringList `policy:"rules,required" doc:"IDs (or patterns) of the approve rules this group decides."`
	TTL         Duration   `policy:"ttl" doc:"How long a granted approval stays usable. Default 15m."`
	Timeout     Duration   `policy:"timeout" doc:"How long a request waits for a decision before it is denied. Default 1h."`
	Notify      StringList `policy:"notify" doc:"Channels where approval requests are posted."`
}

// ChannelDecl is a notification channel (package channel, which what only
// sends notifications imports instead of this package).
type ChannelDecl = channel.Decl

// StringList is a list of strings that may also be written as one string.
type StringList []string

// Duration is a length of time written as "90s", "15m", "24h" or "7d".
type Duration time.Duration
