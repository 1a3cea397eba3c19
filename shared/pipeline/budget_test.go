package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/pricing"
)

func TestBudgets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := policy.Load("p.yaml", []byte(`version: 1
rules:
  - {id: models, effect: allow, action: llm:invoke}
  - {id: tools, effect: allow, action: "tool:*"}
budgets:
  - {id: daily, scope: project, period: day, usd: 1, alerts: [50, 100], notify: ops}
notifications:
  ops: {type: webhook, url: "https://hooks.example.com/warden"}
rate_limits:
  - {id: tools-per-minute, scope: session, action: "tool:*", requests: 2, per: 1m}
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	sink := &audit.MemorySink{}
	var sent []budget.Alert
	b := &Budgets{Service: &budget.Service{Ledger: &budget.MemoryLedger{}, Now: clock}, Limiter: &budget.Limiter{},
		Policy: staticPolicy{p}, Audit: sink, Now: clock, Alerts: func(_ context.Context, a budget.Alert) { sent = append(sent, a) }}
	sess := identity.Session{ID: "s1", Project: "project-a", Agent: "claude"}
	pipe := &Pipeline{Auth: fixedAuth{sess}, Policy: staticPolicy{p}, Approvals: NoApprovals{}, Budget: b, Audit: sink, Now: clock}
	call := func(action string, worst pricing.Money) Verdict {
		return pipe.Decide(ctx, Call{Request: policy.Request{Action: action, Resource: "anthropic/claude-sonnet-4-5"}, Cost: Cost{USD: worst}})
	}

	// Rate limit: the third tool call within a minute waits.
	for i := range 3 {
		v := call("tool:Bash", 0)
		if i < 2 && !v.Allowed || i == 2 && (v.Allowed || v.Refusal.Status != http.StatusTooManyRequests || v.Refusal.RetryAfter <= 0 ||
			!strings.Contains(v.Refusal.Message, "rate limit tools-per-minute for session s1")) {
			t.Fatalf("tool call %d: %+v %+v", i, v.Allowed, v.Refusal)
		}
	}

	// Budget: $0.60 held, $0.30 spent; the 50% alert is recorded and sent.
	v := call("llm:invoke", pricing.USD(0.60))
	if !v.Allowed || v.Hold == nil {
		t.Fatalf("first model call: %+v", v.Refusal)
	}
	if v2 := call("llm:invoke", pricing.USD(0.60)); v2.Allowed || v2.Refusal.Status != http.StatusForbidden ||
		!strings.Contains(v2.Refusal.Message, "budget daily exhausted for project project-a") {
		t.Fatalf("a call that does not fit beside the hold: %+v", v2.Refusal)
	}
	v.Hold.Settle(ctx, Cost{USD: pricing.USD(0.55)})
	if len(sent) != 1 || sent[0].Threshold != 50 {
		t.Fatalf("alerts sent: %+v", sent)
	}
	var alerts []audit.Record
	for _, r := range sink.Records() {
		if r.Code == audit.BudgetAlert {
			alerts = append(alerts, r)
		}
	}
	if len(alerts) != 1 || alerts[0].Session != "s1" || alerts[0].Resource != "daily" || !strings.Contains(alerts[0].Reason, "reached 50%: $0.55 of $1.00 today") {
		t.Fatalf("alert records: %+v", alerts)
	}
	// The refusal is a decision of its own in the trail.
	denied := 0
	for _, r := range sink.Records() {
		if r.Code == audit.DecisionDeny && strings.Contains(r.Reason, "budget daily exhausted") {
			denied++
		}
	}
	if denied != 1 {
		t.Errorf("%d denials for the budget recorded, want 1", denied)
	}
	// Tomorrow the budget is fresh.
	now = now.Add(24 * time.Hour)
	if v := call("llm:invoke", pricing.USD(0.60)); !v.Allowed {
		t.Fatalf("the next day: %+v", v.Refusal)
	}
}

// TestBudgetMessage: a budget alert as a notification: a warning below the
// cap, critical at it, with its facts.
func TestBudgetMessage(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	w, err := budget.WindowAt("day", at)
	if err != nil {
		t.Fatal(err)
	}
	a := budget.Alert{Budget: "project-daily-usd", Scope: "project", Key: "project-a", Window: w, Threshold: 80,
		Spent: budget.Amount{USD: pricing.USD(40)}, Cap: budget.Amount{USD: pricing.USD(50)}, Notify: []string{"hook"}, At: at}
	m := BudgetMessage(a)
	want := notify.Message{Event: "budget.alert", Time: at, Severity: notify.Warning, Title: "Budget project-daily-usd at 80%",
		Text: "budget project-daily-usd for project project-a reached 80%: $40.00 of $50.00 today",
		Fields: []notify.Field{{Name: "budget", Value: "project-daily-usd"}, {Name: "project", Value: "project-a"}, {Name: "threshold", Value: "80%"},
			{Name: "spent", Value: "$40.00"}, {Name: "cap", Value: "$50.00"}}}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("message\n%+v\nwant\n%+v", m, want)
	}
	a.Threshold = 100
	if m := BudgetMessage(a); m.Severity != notify.Critical || m.Title != "Budget project-daily-usd at 100%" {
		t.Errorf("at the cap: %+v", m)
	}
}
