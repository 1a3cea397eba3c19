package audit

import (
	"context"
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
		`   +0.100s  tool    Bash "git push origin main"  needs approval (main)`,
		`   +0.200s  tool    Bash "git push origin feature/x"  allowed (shell)  → completed in 88ms`,
		"   +0.400s  kill    by admin:alice: loop",
		`   +0.500s  refused Bash "ls"  refused: session s1 was killed`,
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
