package policy

import (
	"slices"
	"testing"
	"time"
)

func TestExampleDeclarations(t *testing.T) {
	t.Parallel()
	p := loadExample(t)
	if len(p.Budgets) != 2 || p.Budgets[0].ID != "project-daily-usd" || p.Budgets[0].USD != 50 ||
		!slices.Equal(p.Budgets[0].Alerts, []int{50, 80, 100}) || p.Budgets[0].Period != "day" {
		t.Errorf("budgets: %+v", p.Budgets)
	}
	if !p.Budgets[0].AppliesTo(Principal{Project: "anything"}) {
		t.Error("a budget without who: does not apply to everyone")
	}
	rl := p.RateLimits[0]
	if rl.Requests != 120 || rl.Per != time.Minute || rl.Scope != "session" {
		t.Errorf("rate limit: %+v", rl)
	}
	if !rl.AppliesTo(&Request{Action: "llm:invoke"}) || rl.AppliesTo(&Request{Action: "git:push"}) {
		t.Error("rate limit applies to the wrong actions")
	}
	w := p.Watchdog
	if w.RepeatedCalls != 8 || w.Window != 2*time.Minute || w.OnTrip != "pause" || w.MaxRequestsPerMinute != 0 {
		t.Errorf("watchdog: %+v", w)
	}
	rm := p.Approvers["release-managers"]
	if rm.TTL != 15*time.Minute || rm.Timeout != DefaultApprovalTimeout || !slices.Equal(rm.Slack, []string{"U012AB3CD", "S0123ABCD"}) {
		t.Errorf("release-managers: %+v", rm)
	}
	var names []string
	for _, g := range p.GroupsFor("mass-mail-needs-approval") {
		names = append(names, g.Name)
	}
	if !slices.Equal(names, []string{"marketing-leads"}) {
		t.Errorf("groups for mass mail: %v", names)
	}
	if p.Notifications["ops-slack"].Secret != "warden/slack-bot-token" {
		t.Errorf("notifications: %+v", p.Notifications)
	}
}

func TestScopedDeclarations(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `version: 1
budgets:
  - {id: data, scope: agent, period: month, tokens: 1000, who: {project: data-*, labels: {tier: gold}}}
rate_limits:
  - {id: s3, scope: project, who: {agent: loader}, action: "s3:Get*", requests: 5, per: 1s}
  - {id: llm-tokens, scope: session, action: llm:invoke, tokens: 200000, per: 1m}
watchdog: {max_requests_per_minute: 300}
`)
	b := p.Budgets[0]
	for _, tt := range []struct {
		pr   Principal
		want bool
	}{
		{Principal{Project: "data-lake", Labels: map[string]string{"tier": "gold"}}, true},
		{Principal{Project: "data-lake", Labels: map[string]string{"tier": "silver"}}, false},
		{Principal{Project: "web", Labels: map[string]string{"tier": "gold"}}, false},
	} {
		if got := b.AppliesTo(tt.pr); got != tt.want {
			t.Errorf("budget applies to %+v: %v, want %v", tt.pr, got, tt.want)
		}
	}
	rl := p.RateLimits[0]
	if !rl.AppliesTo(&Request{Principal: Principal{Agent: "loader"}, Action: "S3:GetObject"}) ||
		rl.AppliesTo(&Request{Principal: Principal{Agent: "other"}, Action: "s3:GetObject"}) {
		t.Error("rate limit scope wrong")
	}
	if tl := p.RateLimits[1]; tl.Tokens != 200_000 || tl.Requests != 0 || tl.Per != time.Minute {
		t.Errorf("token rate limit: %+v", tl)
	}
	if w := p.Watchdog; w.Window != DefaultWatchdogWindow || w.OnTrip != "pause" {
		t.Errorf("watchdog defaults: %+v", w)
	}
}
