package policy

import (
	"github.com/wardenhq/warden/policy/names"
	"strings"
	"time"

	"github.com/wardenhq/warden/policy/yamldoc"
)

// compileBudgets validates the budgets and fills in their IDs.
func (c *compiler) compileBudgets(decls []BudgetDecl) []Budget {
	var out []Budget
	ids := map[string]string{}
	for i, d := range decls {
		path := pathOf("budgets", i)
		id := d.ID
		if id == "" {
			id = derivedID("b-", d.Scope, d.Who.Project, d.Who.Agent, d.Who.Labels, d.Period)
		}
		b := Budget{
			ID: c.claimID(path, "budget", id, d.ID != "", ids), Scope: d.Scope, Period: d.Period,
			USD: d.USD, Tokens: d.Tokens, Alerts: d.Alerts, Notify: d.Notify, Pos: c.at(path),
			who: c.compileWho(pathOf(path, "who"), d.Who),
		}
		if d.USD < 0 || d.Tokens < 0 {
			c.errorf(path, CodeInvalidValue, "", "budget amounts cannot be negative")
		}
		if d.USD == 0 && d.Tokens == 0 {
			c.errorf(path, CodeMissingField, "e.g. usd: 50", "a budget needs usd or tokens")
		}
		prev := 0
		for j, a := range d.Alerts {
			if a <= prev || a > 100 {
				c.errorf(pathOf(pathOf(path, "alerts"), j), CodeInvalidValue, "e.g. alerts: [50, 80, 100]",
					"alert thresholds are ascending percentages from 1 to 100, got %d", a)
				break
			}
			prev = a
		}
		if len(d.Alerts) > 0 && len(d.Notify) == 0 {
			c.errorf(pathOf(path, "alerts"), CodeMissingField, "name a channel from notifications:", "budget alerts need notify:")
		}
		c.checkNotify(pathOf(path, "notify"), d.Notify)
		out = append(out, b)
	}
	return out
}

// compileRateLimits validates the rate limits.
func (c *compiler) compileRateLimits(decls []RateLimitDecl) []RateLimit {
	var out []RateLimit
	ids := map[string]string{}
	for i, d := range decls {
		path := pathOf("rate_limits", i)
		id := d.ID
		if id == "" {
			id = derivedID("rl-", d.Scope, d.Who.Project, d.Who.Agent, d.Who.Labels, d.Action)
		}
		rl := RateLimit{
			ID: c.claimID(path, "rate limit", id, d.ID != "", ids), Scope: d.Scope, Requests: d.Requests,
			Tokens: d.Tokens, Per: time.Duration(d.Per), Burst: d.Burst, Pos: c.at(path),
			who: c.compileWho(pathOf(path, "who"), d.Who),
		}
		for j, a := range d.Action {
			if k := c.checkAction(pathOf(pathOf(path, "action"), j), a); k != KindUnknown {
				rl.actions = append(rl.actions, compilePattern(a, k == KindAWS))
			}
		}
		_, hasRequests := c.pos[pathOf(path, "requests")]
		_, hasTokens := c.pos[pathOf(path, "tokens")]
		if !hasRequests && !hasTokens {
			c.errorf(path, CodeMissingField, "e.g. requests: 60 or tokens: 1000000", "a rate limit needs requests or tokens")
		}
		if hasRequests && d.Requests <= 0 {
			c.errorf(pathOf(path, "requests"), CodeInvalidValue, "", "requests must be at least 1")
		}
		if hasTokens && d.Tokens <= 0 {
			c.errorf(pathOf(path, "tokens"), CodeInvalidValue, "", "tokens must be at least 1")
		}
		if d.Burst > 0 && !hasRequests {
			c.errorf(pathOf(path, "burst"), CodeInvalidValue, "set requests: as well", "burst adds to requests, and this limit sets none")
		}
		if rl.Per < time.Second || rl.Per > 24*time.Hour {
			c.errorf(pathOf(path, "per"), CodeInvalidValue, "", "per must be between 1s and 24h")
		}
		if d.Burst < 0 {
			c.errorf(pathOf(path, "burst"), CodeInvalidValue, "", "burst cannot be negative")
		}
		out = append(out, rl)
	}
	return out
}

// MaxRepeatedCalls bounds the levels of repeated_calls: the watchdog keeps
// one timestamp per identical call up to the highest level.
const MaxRepeatedCalls = 100

// compileWatchdog validates the watchdog and fills in defaults.
func (c *compiler) compileWatchdog(d *WatchdogDecl) *Watchdog {
	if d == nil {
		return nil
	}
	const noLimit = 1 << 62
	w := &Watchdog{
		RepeatedCalls:         c.compileLevels("watchdog.repeated_calls", d.RepeatedCalls, MaxRepeatedCalls),
		UpstreamErrors:        c.compileLevels("watchdog.upstream_errors", d.UpstreamErrors, noLimit),
		TokensPerMinute:       c.compileLevels("watchdog.tokens_per_minute", d.TokensPerMinute, noLimit),
		MaxRequestsPerMinute:  c.compileLevels("watchdog.max_requests_per_minute", d.MaxRequestsPerMinute, noLimit),
		MaxConsecutiveDenials: c.compileLevels("watchdog.max_consecutive_denials", d.MaxConsecutiveDenials, noLimit),
		Window:                time.Duration(d.Window), MaxSessionDuration: time.Duration(d.MaxSessionDuration),
		OnTrip: d.OnTrip, Notify: d.Notify, Pos: c.at("watchdog"),
	}
	if w.Window == 0 {
		w.Window = DefaultWatchdogWindow
	}
	if w.OnTrip == "" {
		w.OnTrip = "pause"
	}
	if w.Window < time.Second || w.Window > 24*time.Hour {
		c.errorf("watchdog.window", CodeInvalidValue, "", "window must be between 1s and 24h")
	}
	if _, ok := c.pos["watchdog.max_session_duration"]; ok && w.MaxSessionDuration < time.Minute {
		c.errorf("watchdog.max_session_duration", CodeInvalidValue, "", "max_session_duration must be at least 1m")
	}
	if w.RepeatedCalls.IsZero() && w.UpstreamErrors.IsZero() && w.TokensPerMinute.IsZero() &&
		w.MaxRequestsPerMinute.IsZero() && w.MaxConsecutiveDenials.IsZero() && w.MaxSessionDuration == 0 {
		c.errorf("watchdog", CodeMissingField, "e.g. upstream_errors: {alert: 10, pause: 20}", "the watchdog sets no threshold")
	}
	c.checkNotify("watchdog.notify", d.Notify)
	return w
}

// compileLevels validates a watchdog signal's levels. One number is the
// pause level, with the alert level at half of it, rounded up (none when
// that is the pause level itself, for 1); a mapping gives what it says.
func (c *compiler) compileLevels(path string, d LevelsDecl, limit int64) Levels {
	if _, given := c.pos[path]; !given {
		return Levels{}
	}
	name := path[strings.LastIndexByte(path, '.')+1:]
	if d.Short {
		if !c.checkLevel(path, name, d.Pause, limit) {
			return Levels{}
		}
		l := Levels{Alert: (d.Pause + 1) / 2, Pause: d.Pause}
		if l.Alert >= l.Pause {
			l.Alert = 0
		}
		return l
	}
	_, hasAlert := c.pos[pathOf(path, "alert")]
	_, hasPause := c.pos[pathOf(path, "pause")]
	if !hasAlert && !hasPause {
		c.errorf(path, CodeMissingField, "e.g. {alert: 5, pause: 8}, or leave "+name+" out", "%s sets neither alert nor pause", name)
		return Levels{}
	}
	ok := (!hasAlert || c.checkLevel(pathOf(path, "alert"), name+" alert", d.Alert, limit)) &&
		(!hasPause || c.checkLevel(pathOf(path, "pause"), name+" pause", d.Pause, limit))
	if !ok {
		return Levels{}
	}
	if hasAlert && hasPause && d.Alert >= d.Pause {
		c.errorf(pathOf(path, "alert"), CodeInvalidValue, "the alert comes first, then the pause",
			"%s alert level %d must be below its pause level %d", name, d.Alert, d.Pause)
		return Levels{}
	}
	return Levels{Alert: d.Alert, Pause: d.Pause}
}

func (c *compiler) checkLevel(path, name string, v, limit int64) bool {
	switch {
	case v < 1:
		c.errorf(path, CodeInvalidValue, "leave the signal out to not watch it", "%s must be at least 1, got %d", name, v)
		return false
	case v > limit:
		c.errorf(path, CodeInvalidValue, "", "%s must be at most %d, got %d", name, limit, v)
		return false
	}
	return true
}

// compileApprovers validates the approver groups against the approve rules:
// every group decides at least one rule, and every approve rule has a group.
func (c *compiler) compileApprovers(decls map[string]ApproverDecl, rules []*rule) map[string]ApproverGroup {
	out := map[string]ApproverGroup{}
	var approveIDs []string
	for _, r := range rules {
		if r.effect == Approve {
			approveIDs = append(approveIDs, r.id)
		}
	}
	decided := map[string]bool{}
	for _, name := range sortedKeys(decls) {
		d, path := decls[name], pathOf("approvers", name)
		g := ApproverGroup{
			Name: name, Description: d.Description, Slack: d.Slack, Telegram: d.Telegram, Rules: d.Rules,
			TTL: time.Duration(d.TTL), Timeout: time.Duration(d.Timeout), Notify: d.Notify, Pos: c.at(path),
			rules: compilePatterns(d.Rules, false),
		}
		if !names.Valid(name) {
			c.errorf(path, CodeInvalidValue, "use letters, digits, '.', '_' and '-', at most 64", "invalid approver group name %q", name)
		}
		if g.TTL == 0 {
			g.TTL = DefaultApprovalTTL
		}
		if g.Timeout == 0 {
			g.Timeout = DefaultApprovalTimeout
		}
		if g.TTL < time.Minute || g.TTL > 7*24*time.Hour {
			c.errorf(pathOf(path, "ttl"), CodeInvalidValue, "", "ttl must be between 1m and 7d")
		}
		if g.Timeout < time.Minute || g.Timeout > 7*24*time.Hour {
			c.errorf(pathOf(path, "timeout"), CodeInvalidValue, "", "timeout must be between 1m and 7d")
		}
		for i, id := range d.Slack {
			if !slackRE.MatchString(id) {
				c.errorf(pathOf(pathOf(path, "slack"), i), CodeInvalidValue,
					"Slack member IDs look like U012AB3CD (profile, More, Copy member ID); user groups like S0123ABCD",
					"invalid Slack user or group ID %q", id)
			}
		}
		for i, id := range d.Telegram {
			if !chatRE.MatchString(id) {
				c.errorf(pathOf(pathOf(path, "telegram"), i), CodeInvalidValue, "", "invalid Telegram user ID %q", id)
			}
		}
		for i, p := range g.rules {
			hit := false
			for _, id := range approveIDs {
				if p.match(id) {
					hit, decided[id] = true, true
				}
			}
			if !hit {
				c.errorf(pathOf(pathOf(path, "rules"), i), CodeUnknownReference, "list the ids of approve rules",
					"approver group %q names %q, which matches no approve rule%s", name, d.Rules[i], yamldoc.DidYouMean(d.Rules[i], approveIDs))
			}
		}
		c.checkNotify(pathOf(path, "notify"), d.Notify)
		out[name] = g
	}
	for _, r := range rules {
		if r.effect == Approve && !decided[r.id] {
			c.errs.add(r.pos, CodeUnreachable, "add the rule's id to the rules: of a group under approvers:",
				"approve rule %q has no approver group, so nobody could approve it", r.id)
		}
	}
	return out
}

// GroupsFor returns the approver groups that may decide the given rule.
func (p *Policy) GroupsFor(ruleID string) []ApproverGroup {
	var out []ApproverGroup
	for _, name := range sortedKeys(p.Approvers) {
		g := p.Approvers[name]
		if anyMatch(g.rules, ruleID) {
			out = append(out, g)
		}
	}
	return out
}

// AppliesTo reports whether the budget counts the principal's spending.
func (b *Budget) AppliesTo(pr Principal) bool {
	return b.who.matchesPrincipal(&Request{Principal: pr})
}

// AppliesTo reports whether the rate limit counts the request.
func (rl *RateLimit) AppliesTo(req *Request) bool {
	return rl.who.matchesPrincipal(req) && (rl.actions == nil || anyMatch(rl.actions, req.Action))
}
