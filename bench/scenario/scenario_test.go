package scenario

import (
	"strings"
	"testing"
)

// TestEnginesAgree is what makes the benchmarks a fair comparison: for both
// scenarios, every engine gives every request its expected effect.
func TestEnginesAgree(t *testing.T) {
	t.Parallel()
	for _, s := range []*Scenario{Small(), Large()} {
		for _, e := range Engines() {
			t.Run(e.Name()+"/"+s.Name, func(t *testing.T) {
				t.Parallel()
				decide, err := Build(e, s)
				if err != nil {
					t.Fatal(err)
				}
				for i, q := range s.Requests {
					d, err := decide(i)
					if err != nil {
						t.Errorf("request %d (%s): %v", i, q, err)
						continue
					}
					if d.Effect != q.Want {
						t.Errorf("request %d (%s): got %s (rule %q), want %s", i, q, d.Effect, d.Rule, q.Want)
					}
				}
			})
		}
	}
}

// TestScenarioShape checks the request sets the benchmarks cycle through.
func TestScenarioShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		s         *Scenario
		rules     int
		allowed   int
		denied    int
		principal int // distinct principals in the requests, at least
	}{
		{name: "small", s: Small(), rules: 10, allowed: 128, denied: 128, principal: 4},
		{name: "large", s: Large(), rules: 3000, allowed: 128, denied: 128, principal: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.s.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := len(tt.s.Rules); got != tt.rules {
				t.Errorf("rules: got %d, want %d", got, tt.rules)
			}
			var allowed, denied int
			principals := map[Principal]bool{}
			for _, q := range tt.s.Requests {
				principals[q.Principal] = true
				if q.Want == Allow {
					allowed++
				} else {
					denied++
				}
			}
			if allowed != tt.allowed || denied != tt.denied {
				t.Errorf("allowed/denied: got %d/%d, want %d/%d", allowed, denied, tt.allowed, tt.denied)
			}
			if len(principals) < tt.principal {
				t.Errorf("distinct principals: got %d, want at least %d", len(principals), tt.principal)
			}
		})
	}
}

// TestEnginesCanDisagree proves that TestEnginesAgree can fail: with one
// rule's effect flipped, every engine gets some expected effect wrong.
func TestEnginesCanDisagree(t *testing.T) {
	t.Parallel()
	for _, e := range Engines() {
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			s := Small()
			for i := range s.Rules {
				if s.Rules[i].ID == "no-push-main" {
					s.Rules[i].Effect = Allow
				}
			}
			decide, err := Build(e, s)
			if err != nil {
				t.Fatal(err)
			}
			wrong := 0
			for i, q := range s.Requests {
				if d, err := decide(i); err != nil || d.Effect != q.Want {
					wrong++
				}
			}
			// The coder's pushes to main (one request in 26) are now allowed.
			if want := 10; wrong != want {
				t.Errorf("wrong decisions with no-push-main flipped: got %d, want %d", wrong, want)
			}
		})
	}
}

// TestRender checks the three renderings of one rule, line by line.
func TestRender(t *testing.T) {
	t.Parallel()
	s := &Scenario{Name: "one", Rules: []Rule{{
		ID: "a7-push-feature", Effect: Allow, Project: "p1", Agent: "a7",
		Action: "git:push", Resource: "github.com/acme/a7:refs/heads/feature/*",
	}, {
		ID: "no-main", Effect: Deny, Action: "git:push", Resource: "*:refs/heads/main",
	}}}
	tests := []struct {
		name   string
		render func() ([]byte, error)
		want   []string
	}{
		{name: "warden", render: s.Warden, want: []string{
			`  - id: "a7-push-feature"`,
			`    effect: allow`,
			`    who: {project: "p1", agent: "a7"}`,
			`    action: "git:push"`,
			`    resource: "github.com/acme/a7:refs/heads/feature/*"`,
			`    effect: deny`,
			`    resource: "*:refs/heads/main"`,
		}},
		{name: "cedar", render: s.Cedar, want: []string{
			`@id("a7-push-feature")`,
			`permit (`,
			`  principal == Agent::"p1/a7",`,
			`  action == Action::"git:push",`,
			`when { resource.path like "github.com/acme/a7:refs/heads/feature/*" };`,
			`forbid (`,
			`  principal,`,
			`when { resource.path like "*:refs/heads/main" };`,
		}},
		{name: "rego", render: s.Rego, want: []string{
			"permit if {",
			"\tinput.principal.project == \"p1\"",
			"\tinput.principal.agent == \"a7\"",
			"\tinput.action == \"git:push\"",
			"\tglob.match(\"github.com/acme/a7:refs/heads/feature/*\", null, input.resource)",
			"forbid if {",
			"\tglob.match(\"*:refs/heads/main\", null, input.resource)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, err := tt.render()
			if err != nil {
				t.Fatal(err)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(string(src), "\n") {
				lines[l] = true
			}
			for _, w := range tt.want {
				if !lines[w] {
					t.Errorf("missing line %q in:\n%s", w, src)
				}
			}
		})
	}
}

// TestValidate checks that rules outside the common ground are refused.
func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule Rule
		want string
	}{
		{name: "agent without project", rule: Rule{ID: "r", Effect: Allow, Agent: "a7", Action: "git:push"},
			want: `scenario t: rule "r" names an agent without its project`},
		{name: "action pattern", rule: Rule{ID: "r", Effect: Allow, Action: "s3:Get*"},
			want: `scenario t: rule "r": action "s3:Get*" is not one literal action`},
		{name: "question mark", rule: Rule{ID: "r", Effect: Allow, Action: "git:push", Resource: "a:refs/heads/v?"},
			want: `scenario t: rule "r": resource "a:refs/heads/v?" uses more than * wildcards`},
		{name: "approve", rule: Rule{ID: "r", Effect: "approve", Action: "git:push"},
			want: `scenario t: rule "r": unknown effect "approve"`},
		{name: "no id", rule: Rule{Effect: Allow, Action: "git:push"},
			want: `scenario t: rule 0 has no id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &Scenario{Name: "t", Rules: []Rule{tt.rule}}
			err := s.Validate()
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}
