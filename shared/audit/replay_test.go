package audit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestReplayAndQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sink := &MemorySink{}
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	add := func(ms int, r Record) {
		r.ID, r.Time = NewID(), t0.Add(time.Duration(ms)*time.Millisecond)
		if r.Session == "" && r.Code != ProjectFrozen {
			r.Project, r.Agent, r.Session = "p", "a", "s1"
		}
		if _, err := sink.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	add(0, Record{Code: SessionLogin})
	add(100, Record{Code: DecisionApproval, Action: "tool:Bash", Resource: "git push origin main", Effect: "approve", Rule: "main", Ref: "t1"})
	add(200, Record{Code: DecisionAllow, Action: "tool:Bash", Resource: "git push origin feature/x", Effect: "allow", Rule: "shell", Ref: "t2"})
	add(250, Record{Code: DecisionAllow, Action: "tool:Read", Resource: "/w/x", Effect: "allow", Rule: "read", Ref: "t3", Session: "s2", Project: "p", Agent: "b"})
	add(300, Record{Code: ToolOutcome, Action: "tool:Bash", Ref: "t2", Status: "completed", DurationMS: 88})
	add(400, Record{Code: SessionKilled, Actor: "admin:alice", Reason: "loop"})
	add(500, Record{Code: RequestRefused, Action: "tool:Bash", Resource: "ls", Effect: "deny", Reason: "session s1 was killed"})

	recs, _ := sink.Query(ctx, Filter{Session: "s1"}, 0, 100)
	events := Replay(recs)
	var lines []string
	for _, e := range events {
		lines = append(lines, e.String())
	}
	want := []string{
		"   +0.000s  login",
		`   +0.100s  tool     Bash "git push origin main"  needs approval (main)`,
		`   +0.200s  tool     Bash "git push origin feature/x"  allowed (shell)  → completed in 88ms`,
		"   +0.400s  kill     by admin:alice: loop",
		`   +0.500s  refused  Bash "ls"  refused: session s1 was killed`,
	}
	if got := strings.Join(lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("replay:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}

	for _, tt := range []struct {
		f    Filter
		want int
	}{
		{Filter{Effect: "denied"}, 2},
		{Filter{Effect: "allow"}, 2},
		{Filter{Action: "tool:B*"}, 4},
		{Filter{Agent: "b"}, 1},
		{Filter{Since: t0.Add(200 * time.Millisecond), Until: t0.Add(400 * time.Millisecond)}, 3},
		{Filter{Rule: "shell"}, 1},
		{Filter{Code: ToolOutcome}, 1},
	} {
		got, _ := sink.Query(ctx, tt.f, 0, 100)
		if len(got) != tt.want {
			t.Errorf("%+v: %d records, want %d", tt.f, len(got), tt.want)
		}
	}
}

// TestReplayCostAndApprovals: model calls with their usage, approvals with
// who decided, budget and watchdog events, in one timeline.
func TestReplayCostAndApprovals(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	usage := func(u Usage) json.RawMessage { b, _ := json.Marshal(u); return b }
	var recs []Record
	add := func(ms int, r Record) {
		r.Seq, r.Time, r.Session = int64(len(recs)+1), t0.Add(time.Duration(ms)*time.Millisecond), "s1"
		recs = append(recs, r)
	}
	add(0, Record{Code: DecisionAllow, Action: "llm:invoke", Resource: "claude-sonnet-4-5", Effect: "allow", Rule: "models", Ref: "msg_1"})
	add(900, Record{Code: LLMUsage, Ref: "msg_1", Status: "ok", DurationMS: 900, Args: usage(Usage{Provider: "anthropic", Model: "claude-sonnet-4-5",
		InputTokens: 1200, OutputTokens: 340, CacheReadTokens: 9000, CacheWrite5mTokens: 500, CostUSD: "0.012030"})})
	add(1000, Record{Code: DecisionApproval, Action: "tool:Bash", Resource: "git push origin main", Effect: "approve", Rule: "main", Ref: "toolu_2"})
	add(1001, Record{Code: ApprovalRequested, Ref: "APR-7", Resource: "git push origin main", Reason: "waiting on #deploys"})
	add(61000, Record{Code: ApprovalApproved, Ref: "APR-7", Actor: "slack:U024BE7LH", Reason: "approved once"})
	add(62000, Record{Code: BudgetAlert, Reason: "80% of the daily $50.00 of project-a"})
	add(63000, Record{Code: DecisionAllow, Action: "llm:invoke", Resource: "claude-sonnet-4-5", Effect: "allow", Rule: "models", Ref: "msg_2"})
	add(64000, Record{Code: LLMUsage, Ref: "msg_2", Status: "cut", DurationMS: 1000, Args: usage(Usage{Model: "claude-sonnet-4-5", InputTokens: 1300, OutputTokens: 80, CostUSD: "0.005100", Estimated: true})})
	add(65000, Record{Code: WatchdogPaused, Reason: "10 consecutive upstream errors (429)"})
	add(66000, Record{Code: SessionPaused, Actor: "watchdog", Reason: "20 upstream errors in a row"})
	add(90000, Record{Code: SessionResumed, Actor: "admin:alice"})
	var lines []string
	for _, e := range Replay(recs) {
		lines = append(lines, e.String())
	}
	want := []string{
		`   +0.000s  llm      invoke "claude-sonnet-4-5"  allowed (models)  → 1200 in / 340 out (cache: 9000 read, 500 written), $0.012030 in 900ms`,
		`   +1.000s  tool     Bash "git push origin main"  needs approval (main)`,
		`   +1.001s  approval requested APR-7 "git push origin main": waiting on #deploys`,
		`  +61.000s  approval approved APR-7 by slack:U024BE7LH: approved once`,
		`  +62.000s  budget   alert: 80% of the daily $50.00 of project-a`,
		`  +63.000s  llm      invoke "claude-sonnet-4-5"  allowed (models)  → 1300 in / 80 out, $0.005100 (estimated) in 1000ms`,
		`  +65.000s  watchdog paused: 10 consecutive upstream errors (429)`,
		`  +66.000s  pause    by watchdog: 20 upstream errors in a row`,
		`  +90.000s  resume   by admin:alice`,
	}
	if got := strings.Join(lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("replay:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	events := Replay(recs)
	if u := events[0].Usage; u == nil || u.CacheReadTokens != 9000 || u.Provider != "anthropic" {
		t.Errorf("usage of the first call: %+v", u)
	}
}

// TestReplayAWS: a session's AWS credentials (the decision and the
// issuance, one step) and the calls CloudTrail recorded of them, beside
// its tool calls.
func TestReplayAWS(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var recs []Record
	add := func(ms int, r Record) {
		r.Seq, r.Time, r.Session = int64(len(recs)+1), t0.Add(time.Duration(ms)*time.Millisecond), "s1"
		recs = append(recs, r)
	}
	add(0, Record{Code: DecisionAllow, Kind: "aws", Action: "sts:AssumeRole", Resource: "arn:aws:iam::123456789012:role/Warden-dev-AgentRuntime",
		Effect: "allow", Reason: "session policy sha256:0123abcd (3 statements)", Ref: "aws-1"})
	add(120, Record{Code: AWSCredentials, Kind: "aws", Ref: "aws-1", Status: "issued"})
	add(2000, Record{Code: DecisionAllow, Kind: "tool", Action: "tool:Bash", Resource: "aws s3 cp s3://data-lake/raw/orders.csv .", Effect: "allow", Rule: "tools", Ref: "toolu_1"})
	add(3000, Record{Code: AWSCall, Kind: "aws", Action: "s3:GetObject", Resource: "arn:aws:s3:::data-lake/raw/orders.csv", Status: "ok", Ref: "ev-1"})
	add(4000, Record{Code: AWSCall, Kind: "aws", Action: "s3:DeleteObject", Resource: "arn:aws:s3:::data-lake/raw/orders.csv", Status: "AccessDenied", Ref: "ev-2"})
	var lines []string
	for _, e := range Replay(recs) {
		lines = append(lines, e.String())
	}
	got := strings.Join(lines, "\n")
	want := strings.Join([]string{
		`   +0.000s  aws      sts:AssumeRole "arn:aws:iam::123456789012:role/Warden-dev-AgentRuntime"  allowed: session policy sha256:0123abcd (3 statements)  → issued`,
		`   +2.000s  tool     Bash "aws s3 cp s3://data-lake/raw/orders.csv ."  allowed (tools)`,
		`   +3.000s  aws      s3:GetObject "arn:aws:s3:::data-lake/raw/orders.csv"  → ok`,
		`   +4.000s  aws      s3:DeleteObject "arn:aws:s3:::data-lake/raw/orders.csv"  → AccessDenied`,
	}, "\n")
	if got != want {
		t.Errorf("replay:\n%s\nwant:\n%s", got, want)
	}
}
