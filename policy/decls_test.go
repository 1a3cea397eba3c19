package policy

import (
	"slices"
	"strings"
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
	if w.RepeatedCalls != (Levels{Alert: 10, Pause: 20}) || w.UpstreamErrors != (Levels{Alert: 10, Pause: 20}) ||
		w.TokensPerMinute != (Levels{Alert: 200_000, Pause: 500_000}) || w.MaxConsecutiveDenials != (Levels{Alert: 5, Pause: 10}) ||
		w.Window != 2*time.Minute || w.OnTrip != "pause" || !w.MaxRequestsPerMinute.IsZero() || !slices.Equal(w.Notify, []string{"ops-slack"}) {
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
	if w := p.Watchdog; w.Window != DefaultWatchdogWindow || w.OnTrip != "pause" || w.MaxRequestsPerMinute != (Levels{Alert: 150, Pause: 300}) {
		t.Errorf("watchdog defaults: %+v", w)
	}
}

// TestWatchdogLevels covers the two ways to write a signal's levels.
func TestWatchdogLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want Levels
	}{
		{"number is the pause level, alert at half", "repeated_calls: 8", Levels{Alert: 4, Pause: 8}},
		{"half rounds up", "repeated_calls: 7", Levels{Alert: 4, Pause: 7}},
		{"one has no alert level", "repeated_calls: 1", Levels{Pause: 1}},
		{"both levels", "repeated_calls: {alert: 5, pause: 8}", Levels{Alert: 5, Pause: 8}},
		{"alert only", "repeated_calls: {alert: 5}", Levels{Alert: 5}},
		{"pause only", "repeated_calls: {pause: 8}", Levels{Pause: 8}},
		{"block mapping", "repeated_calls:\n    alert: 3\n    pause: 100", Levels{Alert: 3, Pause: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustLoad(t, "version: 1\nwatchdog:\n  "+tt.src+"\n")
			if got := p.Watchdog.RepeatedCalls; got != tt.want {
				t.Errorf("levels %+v, want %+v", got, tt.want)
			}
		})
	}
	p := mustLoad(t, "version: 1\nwatchdog: {tokens_per_minute: 500000, max_session_duration: 8h, on_trip: kill}\n")
	if w := p.Watchdog; w.TokensPerMinute != (Levels{Alert: 250_000, Pause: 500_000}) || w.MaxSessionDuration != 8*time.Hour ||
		w.OnTrip != "kill" || !w.RepeatedCalls.IsZero() || !w.UpstreamErrors.IsZero() {
		t.Errorf("watchdog: %+v", w)
	}
}

// TestCredentialTTL: issued AWS credentials live an hour unless aws: says
// otherwise, within AWS's 15 minutes to 12 hours.
func TestCredentialTTL(t *testing.T) {
	t.Parallel()
	if p := mustLoad(t, "version: 1\n"); p.CredentialTTL != time.Hour {
		t.Errorf("default %v", p.CredentialTTL)
	}
	if p := mustLoad(t, "version: 1\naws: {credential_ttl: 20m}\n"); p.CredentialTTL != 20*time.Minute {
		t.Errorf("20m: %v", p.CredentialTTL)
	}
	for _, bad := range []string{"5m", "13h"} {
		if msg := loadErrors(t, "version: 1\naws: {credential_ttl: "+bad+"}\n"); !strings.Contains(msg, "credential_ttl") || !strings.Contains(msg, "out of range") {
			t.Errorf("%s: %s", bad, msg)
		}
	}
}
