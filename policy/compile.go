package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/wardenhq/warden/policy/names"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wardenhq/warden/policy/yamldoc"
)

// Policy is a compiled, validated policy: immutable, safe for concurrent use,
// built once at load and evaluated many times.
type Policy struct {
	// File is the name the policy was loaded from.
	File string
	// Version is the SHA-256 of the policy bytes. Approvals and audit records
	// name it, so that a grant made under one policy is not used under another.
	Version string

	rules []*rule
	index index

	// The declarations enforced by other parts of Warden, validated and with
	// defaults filled in.
	Projects      map[string]ProjectDecl
	Budgets       []Budget
	RateLimits    []RateLimit
	Watchdog      *Watchdog
	Approvers     map[string]ApproverGroup
	Notifications map[string]ChannelDecl
	// CredentialTTL is the longest an AWS credential the broker issues
	// lives (aws.credential_ttl; DefaultCredentialTTL).
	CredentialTTL time.Duration
}

// DefaultCredentialTTL is the life of an issued AWS credential unless the
// policy says otherwise; AWS allows 15 minutes to 12 hours.
const (
	DefaultCredentialTTL = time.Hour
	MinCredentialTTL     = 15 * time.Minute
	MaxCredentialTTL     = 12 * time.Hour
)

// Channels returns the notification channels the policy declares, by name;
// false for no policy (nil).
func (p *Policy) Channels() (map[string]ChannelDecl, bool) {
	if p == nil {
		return nil, false
	}
	return p.Notifications, true
}

// ValidName reports whether s can name a project, an agent, a label, a rule
// or a group: letters, digits, '.', '_' and '-', at most 64, not starting
// with punctuation. Identities use the same rule, so every name a session
// carries can be written in a policy.
func ValidName(s string) bool { return names.Valid(s) }

// RuleCount is the number of rules in the policy.
func (p *Policy) RuleCount() int { return len(p.rules) }

// rule is a compiled rule.
type rule struct {
	id     string
	effect Effect
	pos    Position
	desc   string
	order  int
	kind   Kind

	who       who
	actions   []pattern
	resources []pattern // nil: any resource
	commands  []pattern // nil: not a command rule
	cond      *condition
	reason    string
}

// who is a compiled principal selector; nil lists match everyone.
type who struct {
	projects []pattern
	agents   []pattern
	labels   []labelMatch
}

type labelMatch struct {
	key string
	val pattern
}

// Budget is a validated budget declaration.
type Budget struct {
	ID     string
	Scope  string
	Period string
	USD    float64
	Tokens int64
	Alerts []int
	Notify []string
	Pos    Position
	who    who
}

// RateLimit is a validated rate limit declaration. Requests or Tokens, or
// both, are set; zero means that dimension is not limited.
type RateLimit struct {
	ID       string
	Scope    string
	Requests int
	Tokens   int64
	Per      time.Duration
	Burst    int
	Pos      Position
	who      who
	actions  []pattern
}

// Watchdog is the validated watchdog declaration, with defaults filled in.
// A signal whose Levels are zero is not watched.
type Watchdog struct {
	// RepeatedCalls counts identical requests within Window.
	RepeatedCalls Levels
	// UpstreamErrors counts model calls in a row answered 429 or 5xx.
	UpstreamErrors Levels
	// TokensPerMinute counts tokens used in the last minute.
	TokensPerMinute Levels
	// MaxRequestsPerMinute counts requests in the last minute.
	MaxRequestsPerMinute Levels
	// MaxConsecutiveDenials counts requests in a row the policy denied.
	MaxConsecutiveDenials Levels
	// Window is the window of RepeatedCalls, and how long a level that
	// fired stays quiet before it may fire again.
	Window time.Duration
	// MaxSessionDuration, when set, pauses a session that runs longer.
	MaxSessionDuration time.Duration
	// OnTrip is what the pause level does: "pause" or "kill".
	OnTrip string
	// Notify are the channels told of alerts and trips.
	Notify []string
	Pos    Position
}

// Levels are the two levels of a watchdog signal. Zero means the level is
// not set; when both are set, Alert is below Pause.
type Levels struct {
	Alert int64
	Pause int64
}

// IsZero reports whether neither level is set.
func (l Levels) IsZero() bool { return l.Alert == 0 && l.Pause == 0 }

// ApproverGroup is a validated approver group, with defaults filled in.
type ApproverGroup struct {
	Name        string
	Description string
	Slack       []string
	Telegram    []string
	Rules       []string
	TTL         time.Duration
	Timeout     time.Duration
	Notify      []string
	Pos         Position
	rules       []pattern
}

// Defaults for optional settings.
const (
	DefaultApprovalTTL     = 15 * time.Minute
	DefaultApprovalTimeout = time.Hour
	DefaultWatchdogWindow  = 5 * time.Minute
)

// Load parses, validates and compiles one policy file. On failure the error
// is an ErrorList with every problem found, sorted by position.
func Load(file string, data []byte) (*Policy, error) {
	e := &errs{}
	f, pos := parseFile(file, data, e)
	if f == nil {
		return nil, e.err()
	}
	sum := sha256.Sum256(data)
	c := &compiler{file: file, pos: pos, errs: e, conds: condCache{}, src: data}
	p := c.compile(f)
	if err := e.err(); err != nil {
		return nil, err
	}
	p.File = file
	p.Version = hex.EncodeToString(sum[:])
	return p, nil
}

// parseFile decodes the bytes into a File, collecting errors.
func parseFile(file string, data []byte, e *errs) (*File, positions) {
	var f File
	pos := decodeDoc(file, data, &f, e)
	if pos == nil {
		return nil, nil
	}
	if at, ok := pos["version"]; ok && f.Version != 1 {
		e.add(at, CodeVersion, "this Warden reads version: 1", "unsupported policy version %d", f.Version)
		return nil, nil
	}
	return &f, pos
}

// compiler carries the state of one compile.
type compiler struct {
	file  string
	pos   positions
	errs  *errs
	conds condCache
	f     *File
	src   []byte // the source, for placing errors inside expressions
}

// at returns the position of a path, falling back to its nearest parent.
func (c *compiler) at(path string) Position {
	for path != "" {
		if p, ok := c.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return Position{File: c.file, Line: 1, Column: 1}
}

func (c *compiler) errorf(path string, code Code, hint, format string, args ...any) {
	c.errs.addOnce(c.at(path), code, hint, format, args...)
}

func (c *compiler) compile(f *File) *Policy {
	c.f = f
	p := &Policy{Projects: f.Projects, Notifications: f.Notifications}
	c.checkProjects(f.Projects)
	c.checkChannels(f.Notifications)
	ids := map[string]string{}
	for i := range f.Rules {
		if r := c.compileRule(&f.Rules[i], i, ids); r != nil {
			p.rules = append(p.rules, r)
		}
	}
	p.index = buildIndex(p.rules)
	p.Budgets = c.compileBudgets(f.Budgets)
	p.RateLimits = c.compileRateLimits(f.RateLimits)
	p.Watchdog = c.compileWatchdog(f.Watchdog)
	p.Approvers = c.compileApprovers(f.Approvers, p.rules)
	p.CredentialTTL = DefaultCredentialTTL
	if f.AWS != nil && f.AWS.CredentialTTL != 0 {
		p.CredentialTTL = time.Duration(f.AWS.CredentialTTL)
		if p.CredentialTTL < MinCredentialTTL || p.CredentialTTL > MaxCredentialTTL {
			c.errorf("aws.credential_ttl", CodeInvalidValue, "AWS issues role credentials for 15m to 12h", "credential_ttl %s is out of range", p.CredentialTTL)
		}
	}
	if len(c.errs.list) == 0 {
		c.checkSessionPolicies(p)
	}
	return p
}

var (
	slackRE  = regexp.MustCompile(`^[UWS][A-Z0-9]{2,20}$`)
	chanRE   = regexp.MustCompile(`^[CG][A-Z0-9]{2,20}$`)
	chatRE   = regexp.MustCompile(`^-?[0-9]{1,20}$`)
	serviceR = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	secretRE = regexp.MustCompile(`^(xox[abposr]-|xapp-|sk-|ghp_|gho_|github_pat_|AKIA[0-9A-Z]{16}|[0-9]{6,}:[A-Za-z0-9_-]{30,})`)
)

func (c *compiler) checkProjects(projects map[string]ProjectDecl) {
	for _, name := range sortedKeys(projects) {
		path := pathOf("projects", name)
		if !names.Valid(name) {
			c.errorf(path, CodeInvalidValue, "use letters, digits, '.', '_' and '-', at most 64", "invalid project name %q", name)
		}
		c.checkLabels(pathOf(path, "labels"), projects[name].Labels)
		for _, agent := range sortedKeys(projects[name].Agents) {
			ap := pathOf(pathOf(path, "agents"), agent)
			if !names.Valid(agent) {
				c.errorf(ap, CodeInvalidValue, "use letters, digits, '.', '_' and '-', at most 64", "invalid agent name %q", agent)
			}
			c.checkLabels(pathOf(ap, "labels"), projects[name].Agents[agent].Labels)
		}
	}
}

func (c *compiler) checkLabels(path string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		if !names.Valid(k) {
			c.errorf(pathOf(path, k), CodeInvalidValue, "use letters, digits, '.', '_' and '-', at most 64", "invalid label name %q", k)
		}
	}
}

func (c *compiler) checkChannels(channels map[string]ChannelDecl) {
	for _, name := range sortedKeys(channels) {
		ch, path := channels[name], pathOf("notifications", name)
		if secretRE.MatchString(ch.Secret) || secretRE.MatchString(ch.URL) {
			c.errorf(pathOf(path, "secret"), CodeSecretInPolicy,
				"store the token in the secret store (or environment) and write its name here",
				"channel %q holds what looks like a credential", name)
		}
		switch ch.Type {
		case "slack":
			if !chanRE.MatchString(ch.Channel) {
				c.errorf(pathOf(path, "channel"), CodeInvalidValue, "a Slack channel ID looks like C0123ABCD (channel details, bottom)",
					"slack channel %q needs a channel ID, got %q", name, ch.Channel)
			}
		case "telegram":
			if !chatRE.MatchString(ch.ChatID) {
				c.errorf(pathOf(path, "chat_id"), CodeInvalidValue, "a Telegram chat ID is a number such as -1001234567890",
					"telegram channel %q needs a chat_id, got %q", name, ch.ChatID)
			}
		case "webhook":
			if !validWebhookURL(ch.URL) {
				c.errorf(pathOf(path, "url"), CodeInvalidValue, "use https://, or http:// to 127.0.0.1 or localhost",
					"webhook channel %q has invalid url %q", name, ch.URL)
			}
		}
		if ch.Type != "slack" && ch.Channel != "" {
			c.errorf(pathOf(path, "channel"), CodeInvalidValue, "", "channel is only for slack channels")
		}
		if ch.Type != "telegram" && ch.ChatID != "" {
			c.errorf(pathOf(path, "chat_id"), CodeInvalidValue, "", "chat_id is only for telegram channels")
		}
		if ch.Type != "webhook" && ch.URL != "" {
			c.errorf(pathOf(path, "url"), CodeInvalidValue, "", "url is only for webhook channels")
		}
	}
}

func validWebhookURL(u string) bool {
	if strings.HasPrefix(u, "https://") && len(u) > len("https://") && !strings.ContainsAny(u, " \t\n@") {
		return true
	}
	for _, h := range []string{"http://127.0.0.1", "http://localhost"} {
		if rest, ok := strings.CutPrefix(u, h); ok && (rest == "" || rest[0] == ':' || rest[0] == '/') {
			return true
		}
	}
	return false
}

func (c *compiler) checkNotify(path string, names []string) {
	known := sortedKeys(c.f.Notifications)
	for i, n := range names {
		if _, ok := c.f.Notifications[n]; !ok {
			c.errorf(pathOf(path, i), CodeUnknownReference, "declare it under notifications:",
				"unknown notification channel %q%s", n, yamldoc.DidYouMean(n, known))
		}
	}
}

// compileWho compiles a principal selector and checks literal names against
// the declared projects and agents.
func (c *compiler) compileWho(path string, w WhoDecl) who {
	var out who
	for i, s := range w.Project {
		if s == "" {
			c.errorf(pathOf(pathOf(path, "project"), i), CodeBadPattern, "", "empty project pattern")
			continue
		}
		if c.f.Projects != nil && !hasWildcard(s) {
			if _, ok := c.f.Projects[s]; !ok {
				c.errorf(pathOf(pathOf(path, "project"), i), CodeUnknownReference, "declare it under projects:",
					"unknown project %q%s", s, yamldoc.DidYouMean(s, sortedKeys(c.f.Projects)))
			}
		}
		out.projects = append(out.projects, compilePattern(s, false))
	}
	for i, s := range w.Agent {
		if s == "" {
			c.errorf(pathOf(pathOf(path, "agent"), i), CodeBadPattern, "", "empty agent pattern")
			continue
		}
		if !hasWildcard(s) && !c.agentDeclared(w.Project, s) {
			c.errorf(pathOf(pathOf(path, "agent"), i), CodeUnknownReference, "declare it under the project's agents:",
				"agent %q is not declared in the rule's projects%s", s, yamldoc.DidYouMean(s, c.agentNames(w.Project)))
		}
		out.agents = append(out.agents, compilePattern(s, false))
	}
	for _, k := range sortedKeys(w.Labels) {
		out.labels = append(out.labels, labelMatch{key: k, val: compilePattern(w.Labels[k], false)})
	}
	return out
}

// agentDeclared reports whether an agent name is declared in a project the
// selector can match. Without declared agents every name is accepted.
func (c *compiler) agentDeclared(projects StringList, agent string) bool {
	names := c.agentNames(projects)
	return names == nil || slices.Contains(names, agent)
}

// agentNames lists the agents declared in the projects a selector matches,
// or nil when those projects declare none.
func (c *compiler) agentNames(projects StringList) []string {
	var names []string
	declared := false
	for name, p := range c.f.Projects {
		if len(projects) > 0 && !anyMatch(compilePatterns(projects, false), name) {
			continue
		}
		if p.Agents != nil {
			declared = true
		}
		names = append(names, sortedKeys(p.Agents)...)
	}
	if !declared {
		return nil
	}
	sort.Strings(names)
	return names
}

func compilePatterns(src []string, fold bool) []pattern {
	out := make([]pattern, len(src))
	for i, s := range src {
		out[i] = compilePattern(s, fold)
	}
	return out
}

func anyMatch(ps []pattern, s string) bool {
	for i := range ps {
		if ps[i].match(s) {
			return true
		}
	}
	return false
}

// derivedID names a declaration from its content, so that the ID survives
// reordering and changes only when the declaration does.
func derivedID(prefix string, parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%#v\x00", p)
	}
	return prefix + hex.EncodeToString(h.Sum(nil))[:8]
}

// claimID checks an ID's form and uniqueness among its kind of declaration.
func (c *compiler) claimID(path, kind, id string, given bool, ids map[string]string) string {
	if given && !names.Valid(id) {
		c.errorf(pathOf(path, "id"), CodeInvalidValue, "use letters, digits, '.', '_' and '-', at most 64", "invalid %s id %q", kind, id)
	}
	if prev, ok := ids[id]; ok {
		if given {
			c.errorf(pathOf(path, "id"), CodeDuplicateID, "every "+kind+" needs its own id",
				"%s id %q is already used at %s", kind, id, prev)
			return id
		}
		for n := 2; ; n++ {
			alt := fmt.Sprintf("%s-%d", id, n)
			if _, taken := ids[alt]; !taken {
				id = alt
				break
			}
		}
	}
	ids[id] = c.at(path).String()
	return id
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
