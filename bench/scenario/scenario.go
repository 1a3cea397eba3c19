// Package scenario describes authorization scenarios once, in an
// engine-neutral form, and renders them as a Warden policy, a Cedar policy set
// and a Rego module, so that benchmarks of the three engines decide exactly
// the same rules over exactly the same requests.
//
// The neutral form is deliberately small: a rule names at most one project,
// at most one agent (only together with a project), exactly one literal
// action, and at most one resource pattern in which * matches any run of
// characters, including / and :. That is the common ground of the three
// languages, and every renderer refuses what it cannot express exactly.
package scenario

import (
	"fmt"
	"strings"
)

// Effect is what a rule does when it matches, and what a request expects.
type Effect string

// The effects. Deny is also the default when no rule allows.
const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Rule is one rule of a scenario.
type Rule struct {
	// ID names the rule in every engine (Warden id, Cedar @id, Rego comment).
	ID     string
	Effect Effect
	// Project is the project the rule applies to; empty for every project.
	Project string
	// Agent is the agent the rule applies to; empty for every agent of the
	// project. An agent is only named together with its project.
	Agent string
	// Action is one literal action, e.g. git:push or s3:GetObject.
	Action string
	// Resource is a glob over the resource (* matches any run of
	// characters); empty for every resource.
	Resource string
}

// Principal is an agent of a project, as registered with the deployment.
type Principal struct {
	Project string
	Agent   string
}

// Request is one request of a scenario and the effect it must get.
type Request struct {
	Principal Principal
	Action    string
	Resource  string
	Want      Effect
}

// String describes the request for failure messages.
func (r Request) String() string {
	return fmt.Sprintf("%s/%s %s %s", r.Principal.Project, r.Principal.Agent, r.Action, r.Resource)
}

// Scenario is a set of rules, the agents they are written for, and requests
// with their expected effects.
type Scenario struct {
	Name string
	// Principals are the registered agents. Cedar needs them as entities to
	// know which project an agent belongs to; the other engines take the
	// project from the request.
	Principals []Principal
	Rules      []Rule
	Requests   []Request
}

// Validate checks that the scenario stays within the neutral form.
func (s *Scenario) Validate() error {
	ids := map[string]bool{}
	for i, r := range s.Rules {
		switch {
		case r.ID == "":
			return fmt.Errorf("scenario %s: rule %d has no id", s.Name, i)
		case ids[r.ID]:
			return fmt.Errorf("scenario %s: duplicate rule id %q", s.Name, r.ID)
		case r.Effect != Allow && r.Effect != Deny:
			return fmt.Errorf("scenario %s: rule %q: unknown effect %q", s.Name, r.ID, r.Effect)
		case r.Agent != "" && r.Project == "":
			return fmt.Errorf("scenario %s: rule %q names an agent without its project", s.Name, r.ID)
		case r.Action == "" || strings.ContainsAny(r.Action, "*?"):
			return fmt.Errorf("scenario %s: rule %q: action %q is not one literal action", s.Name, r.ID, r.Action)
		case strings.ContainsAny(r.Resource, "?\\\"[]{}"):
			return fmt.Errorf("scenario %s: rule %q: resource %q uses more than * wildcards", s.Name, r.ID, r.Resource)
		case strings.ContainsAny(r.Project+r.Agent, "*?/\\\""):
			return fmt.Errorf("scenario %s: rule %q: project and agent must be literal names", s.Name, r.ID)
		}
		ids[r.ID] = true
	}
	for i, q := range s.Requests {
		if q.Want != Allow && q.Want != Deny {
			return fmt.Errorf("scenario %s: request %d: unknown expected effect %q", s.Name, i, q.Want)
		}
	}
	return nil
}

// Models used by the small scenario.
const (
	modelSonnet = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"
	modelHaiku  = "bedrock/anthropic.claude-haiku-4-5-20251001-v1:0"
	modelOpus   = "bedrock/anthropic.claude-opus-4-1-20250805-v1:0"
)

// Small is a realistic ten-rule policy for two projects: project-a's agents
// push feature branches of one repository but never main, read raw data but
// never delete it, and invoke two Bedrock models; its reviewer pushes
// nothing; project-b's analyst reads curated data except PII; everyone may
// fetch any repository.
func Small() *Scenario {
	s := &Scenario{
		Name: "small",
		Principals: []Principal{
			{"project-a", "coder"},
			{"project-a", "reviewer"},
			{"project-b", "analyst"},
		},
		Rules: []Rule{
			{ID: "a-push-feature", Effect: Allow, Project: "project-a", Action: "git:push", Resource: "github.com/acme/app:refs/heads/feature/*"},
			{ID: "no-push-main", Effect: Deny, Action: "git:push", Resource: "*:refs/heads/main"},
			{ID: "a-reviewer-no-push", Effect: Deny, Project: "project-a", Agent: "reviewer", Action: "git:push"},
			{ID: "fetch-any", Effect: Allow, Action: "git:fetch"},
			{ID: "a-read-raw", Effect: Allow, Project: "project-a", Action: "s3:GetObject", Resource: "arn:aws:s3:::data-lake/raw/*"},
			{ID: "no-delete-data-lake", Effect: Deny, Action: "s3:DeleteObject", Resource: "arn:aws:s3:::data-lake/*"},
			{ID: "a-invoke-sonnet", Effect: Allow, Project: "project-a", Action: "llm:invoke", Resource: modelSonnet},
			{ID: "a-invoke-haiku", Effect: Allow, Project: "project-a", Action: "llm:invoke", Resource: modelHaiku},
			{ID: "b-analyst-read-curated", Effect: Allow, Project: "project-b", Agent: "analyst", Action: "s3:GetObject", Resource: "arn:aws:s3:::data-lake/curated/*"},
			{ID: "b-no-pii", Effect: Deny, Project: "project-b", Action: "s3:GetObject", Resource: "arn:aws:s3:::data-lake/*/pii/*"},
		},
	}
	// Each template is a request with its expected effect, written by hand
	// from the rules above; %d makes requests differ.
	type tmpl struct {
		project, agent, action, resource string
		want                             Effect
	}
	allowed := []tmpl{
		{"project-a", "coder", "git:push", "github.com/acme/app:refs/heads/feature/f-%d", Allow},
		{"project-a", "coder", "git:push", "github.com/acme/app:refs/heads/feature/team/t-%d", Allow},
		{"project-a", "coder", "git:fetch", "github.com/acme/lib-%d:refs/heads/main", Allow},
		{"project-b", "analyst", "git:fetch", "github.com/acme/app:refs/tags/v1.%d", Allow},
		{"project-z", "visitor", "git:fetch", "github.com/other/repo-%d:refs/heads/main", Allow},
		{"project-a", "reviewer", "s3:GetObject", "arn:aws:s3:::data-lake/raw/2025/%d.parquet", Allow},
		{"project-a", "coder", "s3:GetObject", "arn:aws:s3:::data-lake/raw/events-%d.json", Allow},
		{"project-a", "coder", "llm:invoke", modelSonnet, Allow},
		{"project-a", "reviewer", "llm:invoke", modelHaiku, Allow},
		{"project-b", "analyst", "s3:GetObject", "arn:aws:s3:::data-lake/curated/sales/%d.csv", Allow},
		{"project-b", "analyst", "s3:GetObject", "arn:aws:s3:::data-lake/curated/pii-summary/%d.csv", Allow},
	}
	denied := []tmpl{
		{"project-a", "coder", "git:push", "github.com/acme/app:refs/heads/main", Deny},
		{"project-a", "reviewer", "git:push", "github.com/acme/app:refs/heads/feature/r-%d", Deny},
		{"project-a", "coder", "git:push", "github.com/acme/lib-%d:refs/heads/feature/x", Deny},
		{"project-b", "analyst", "git:push", "github.com/acme/app:refs/heads/feature/b-%d", Deny},
		{"project-a", "coder", "git:delete-ref", "github.com/acme/app:refs/heads/feature/f-%d", Deny},
		{"project-a", "coder", "s3:DeleteObject", "arn:aws:s3:::data-lake/raw/events-%d.json", Deny},
		{"project-a", "coder", "s3:PutObject", "arn:aws:s3:::data-lake/raw/events-%d.json", Deny},
		{"project-a", "coder", "s3:GetObject", "arn:aws:s3:::data-lake/curated/sales/%d.csv", Deny},
		{"project-b", "analyst", "s3:GetObject", "arn:aws:s3:::data-lake/curated/pii/%d.csv", Deny},
		{"project-b", "analyst", "s3:GetObject", "arn:aws:s3:::data-lake/raw/events-%d.json", Deny},
		{"project-a", "coder", "llm:invoke", modelOpus, Deny},
		{"project-b", "analyst", "llm:invoke", modelSonnet, Deny},
		{"project-z", "visitor", "s3:GetObject", "arn:aws:s3:::data-lake/raw/events-%d.json", Deny},
	}
	for i := range 256 {
		t := allowed[(i/2)%len(allowed)]
		if i%2 == 1 {
			t = denied[(i/2)%len(denied)]
		}
		res := t.resource
		if strings.Contains(res, "%d") {
			res = fmt.Sprintf(res, i)
		}
		s.Requests = append(s.Requests, Request{
			Principal: Principal{Project: t.project, Agent: t.agent},
			Action:    t.action,
			Resource:  res,
			Want:      t.want,
		})
	}
	return s
}

// LargeAgents is the number of agents of the large scenario.
const LargeAgents = 1000

// Large is a 3,000-rule policy: 1,000 agents (agent-0000 … agent-0999, ten
// to a project, proj-00 … proj-99), each allowed to push feature branches of
// its own repository and to read its own prefix of the data lake, and each
// denied deleting anything in the data lake.
func Large() *Scenario {
	s := &Scenario{Name: "large"}
	for n := range LargeAgents {
		pr := largePrincipal(n)
		s.Principals = append(s.Principals, pr)
		s.Rules = append(s.Rules,
			Rule{ID: pr.Agent + "-push-feature", Effect: Allow, Project: pr.Project, Agent: pr.Agent,
				Action: "git:push", Resource: fmt.Sprintf("github.com/acme/repo-%04d:refs/heads/feature/*", n)},
			Rule{ID: pr.Agent + "-read-own", Effect: Allow, Project: pr.Project, Agent: pr.Agent,
				Action: "s3:GetObject", Resource: fmt.Sprintf("arn:aws:s3:::data-lake/agent-%04d/*", n)},
			Rule{ID: pr.Agent + "-no-delete", Effect: Deny, Project: pr.Project, Agent: pr.Agent,
				Action: "s3:DeleteObject", Resource: "arn:aws:s3:::data-lake/*"},
		)
	}
	for i := range 256 {
		// 397 is prime to 1000: the requests visit 256 different agents.
		n := (i * 397) % LargeAgents
		other := (n + 1 + i%7) % LargeAgents
		pr := largePrincipal(n)
		q := Request{Principal: pr}
		switch i % 8 {
		case 0:
			q.Action, q.Resource, q.Want = "git:push", fmt.Sprintf("github.com/acme/repo-%04d:refs/heads/feature/f-%d", n, i), Allow
		case 1:
			q.Action, q.Resource, q.Want = "git:push", fmt.Sprintf("github.com/acme/repo-%04d:refs/heads/main", n), Deny
		case 2:
			q.Action, q.Resource, q.Want = "s3:GetObject", fmt.Sprintf("arn:aws:s3:::data-lake/agent-%04d/part-%d.parquet", n, i), Allow
		case 3:
			q.Action, q.Resource, q.Want = "s3:GetObject", fmt.Sprintf("arn:aws:s3:::data-lake/agent-%04d/part-%d.parquet", other, i), Deny
		case 4:
			q.Action, q.Resource, q.Want = "git:push", fmt.Sprintf("github.com/acme/repo-%04d:refs/heads/feature/team/t-%d", n, i), Allow
		case 5:
			q.Action, q.Resource, q.Want = "s3:DeleteObject", fmt.Sprintf("arn:aws:s3:::data-lake/agent-%04d/part-%d.parquet", n, i), Deny
		case 6:
			q.Action, q.Resource, q.Want = "s3:GetObject", fmt.Sprintf("arn:aws:s3:::data-lake/agent-%04d/2025/10/%d.json", n, i), Allow
		case 7:
			// The right repository, but the agent claims another project.
			q.Principal.Project = largePrincipal(other).Project
			if q.Principal.Project == pr.Project {
				q.Principal.Project = "proj-xx"
			}
			q.Action, q.Resource, q.Want = "git:push", fmt.Sprintf("github.com/acme/repo-%04d:refs/heads/feature/f-%d", n, i), Deny
		}
		s.Requests = append(s.Requests, q)
	}
	return s
}

func largePrincipal(n int) Principal {
	return Principal{Project: fmt.Sprintf("proj-%02d", n/10), Agent: fmt.Sprintf("agent-%04d", n)}
}

// Warden renders the scenario as a Warden policy file (YAML, version 1).
func (s *Scenario) Warden() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Scenario %q, generated by github.com/wardenhq/warden/bench/scenario.\n", s.Name)
	b.WriteString("version: 1\nrules:\n")
	for _, r := range s.Rules {
		fmt.Fprintf(&b, "  - id: %q\n    effect: %s\n", r.ID, r.Effect)
		switch {
		case r.Agent != "":
			fmt.Fprintf(&b, "    who: {project: %q, agent: %q}\n", r.Project, r.Agent)
		case r.Project != "":
			fmt.Fprintf(&b, "    who: {project: %q}\n", r.Project)
		}
		fmt.Fprintf(&b, "    action: %q\n", r.Action)
		if r.Resource != "" {
			fmt.Fprintf(&b, "    resource: %q\n", r.Resource)
		}
	}
	return []byte(b.String()), nil
}

// Cedar entity types used by the Cedar rendering.
const (
	CedarAgentType    = "Agent"
	CedarProjectType  = "Project"
	CedarActionType   = "Action"
	CedarResourceType = "Resource"
)

// CedarAgentID is the Cedar entity ID of an agent: agent names are unique
// only within a project, so the ID carries both.
func CedarAgentID(p Principal) string { return p.Project + "/" + p.Agent }

// Cedar renders the scenario as a Cedar policy set. Principals are Agent
// entities whose parent is their Project; actions are Action entities named
// by the action; the resource is a Resource entity whose path attribute is
// matched with like, whose * also matches any run of characters. Deny rules
// become forbid policies, which override permits as Warden's deny does.
func (s *Scenario) Cedar() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, r := range s.Rules {
		effect := "permit"
		if r.Effect == Deny {
			effect = "forbid"
		}
		principal := "principal"
		switch {
		case r.Agent != "":
			principal = fmt.Sprintf("principal == %s::%q", CedarAgentType, CedarAgentID(Principal{r.Project, r.Agent}))
		case r.Project != "":
			principal = fmt.Sprintf("principal in %s::%q", CedarProjectType, r.Project)
		}
		fmt.Fprintf(&b, "@id(%q)\n%s (\n  %s,\n  action == %s::%q,\n  resource\n)", r.ID, effect, principal, CedarActionType, r.Action)
		if r.Resource != "" {
			// Validate has excluded the characters that would need escaping.
			fmt.Fprintf(&b, "\nwhen { resource.path like \"%s\" }", r.Resource)
		}
		b.WriteString(";\n\n")
	}
	return []byte(b.String()), nil
}

// RegoPackage is the package of the Rego rendering, and RegoQuery the query
// that decides a request.
const (
	RegoPackage = "warden"
	RegoQuery   = "data.warden.allow"
)

// Rego renders the scenario as a Rego (v1) module. Each rule becomes one body
// of the boolean rule permit or forbid, whose equality tests on input refs
// against constants OPA's rule index uses to skip the rules of other
// principals and actions; resources are matched with glob.match and null
// delimiters, so that * also matches / and : (an empty delimiter array would
// mean ".").
func (s *Scenario) Rego() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Scenario %q, generated by github.com/wardenhq/warden/bench/scenario.\n", s.Name)
	fmt.Fprintf(&b, "package %s\n\n", RegoPackage)
	b.WriteString("default allow := false\n\n")
	b.WriteString("# Deny by default; a matching forbid overrides every permit.\n")
	b.WriteString("allow if {\n\tpermit\n\tnot forbid\n}\n")
	for _, r := range s.Rules {
		head := "permit"
		if r.Effect == Deny {
			head = "forbid"
		}
		fmt.Fprintf(&b, "\n# %s\n%s if {\n", r.ID, head)
		if r.Project != "" {
			fmt.Fprintf(&b, "\tinput.principal.project == %q\n", r.Project)
		}
		if r.Agent != "" {
			fmt.Fprintf(&b, "\tinput.principal.agent == %q\n", r.Agent)
		}
		fmt.Fprintf(&b, "\tinput.action == %q\n", r.Action)
		if r.Resource != "" {
			// Validate has excluded glob.match's other metacharacters.
			fmt.Fprintf(&b, "\tglob.match(%q, null, input.resource)\n", r.Resource)
		}
		b.WriteString("}\n")
	}
	return []byte(b.String()), nil
}
