package policy

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// MaxSessionPolicyChars is AWS's limit on the plaintext of an inline session
// policy passed to sts:AssumeRole.
const MaxSessionPolicyChars = 2048

// IAMPolicy is an IAM policy document, as passed to sts:AssumeRole.
type IAMPolicy struct {
	Version   string         `json:"Version"`
	Statement []IAMStatement `json:"Statement"`
}

// IAMStatement is one statement of an IAMPolicy.
type IAMStatement struct {
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// JSON returns the compact document, as counted against AWS's size limit.
func (d *IAMPolicy) JSON() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		// Only strings and slices of strings: encoding cannot fail.
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// SessionPolicy compiles the AWS rules that apply to a principal into an IAM
// session policy, which AWS then enforces on the credentials Warden hands
// out. The document never allows more than Evaluate does:
//   - allow rules become Allow statements, unless they have a condition
//     (which IAM cannot evaluate): those are left out;
//   - deny rules become Deny statements, with or without a condition (a
//     conditional deny is enforced unconditionally, which is stricter);
//   - approve rules become Deny statements too: what needs a human is
//     never in the session's credentials, even where an allow rule also
//     covers it (in Warden, approve beats allow); an approved action gets
//     a credential for that one action, made when it is approved.
//
// Statements with the same effect and resources are merged. A policy with no
// AWS allow for the principal yields a document with no Allow statement.
func (p *Policy) SessionPolicy(pr Principal) *IAMPolicy {
	doc := &IAMPolicy{Version: "2012-10-17", Statement: []IAMStatement{}}
	req := Request{Principal: pr}
	candidates := p.awsCandidates(pr)
	for _, effect := range []Effect{Deny, Approve, Allow} {
		for _, r := range candidates {
			if r.effect != effect || !r.who.matchesPrincipal(&req) {
				continue
			}
			if r.effect == Allow && r.cond != nil {
				continue
			}
			st := IAMStatement{Effect: "Allow", Resource: []string{"*"}}
			if effect != Allow {
				st.Effect = "Deny"
			}
			if r.kind == kindAny {
				st.Action = []string{"*"}
			} else {
				for _, a := range r.actions {
					st.Action = append(st.Action, a.text)
				}
			}
			if r.resources != nil {
				st.Resource = nil
				for _, res := range r.resources {
					st.Resource = append(st.Resource, res.src)
				}
			}
			doc.merge(st)
		}
	}
	return doc
}

// awsCandidates returns, in policy order, the AWS and any-action rules the
// index files under the principal's project and agent.
func (p *Policy) awsCandidates(pr Principal) []*rule {
	seen := map[*rule]bool{}
	var out []*rule
	add := func(rules []*rule) {
		for _, r := range rules {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	for _, ai := range [2]*agentIndex{p.index.byProject[pr.Project], p.index.anyProject} {
		if ai == nil {
			continue
		}
		for _, si := range [2]*serviceIndex{ai.byAgent[pr.Agent], ai.anyAgent} {
			if si == nil {
				continue
			}
			for service, rules := range si.byService {
				if KindOf(service+":") == KindAWS {
					add(rules)
				}
			}
			add(si.anyService)
		}
	}
	slices.SortFunc(out, func(a, b *rule) int { return a.order - b.order })
	return out
}

// merge adds st, folding it into an earlier statement of the same effect
// that has the same actions (the resources are joined) or the same
// resources (the actions are joined); both are equivalent to two statements.
func (d *IAMPolicy) merge(st IAMStatement) {
	for i := range d.Statement {
		prev := &d.Statement[i]
		if prev.Effect != st.Effect {
			continue
		}
		switch {
		case slices.Equal(prev.Resource, st.Resource):
			prev.Action = union(prev.Action, st.Action)
			return
		case slices.Equal(prev.Action, st.Action):
			prev.Resource = union(prev.Resource, st.Resource)
			return
		}
	}
	d.Statement = append(d.Statement, st)
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// matchesPrincipal applies the selector to a principal.
func (w *who) matchesPrincipal(req *Request) bool {
	pr := &req.Principal
	if w.projects != nil && !anyMatch(w.projects, pr.Project) {
		return false
	}
	if w.agents != nil && !anyMatch(w.agents, pr.Agent) {
		return false
	}
	for i := range w.labels {
		val, ok := pr.Labels[w.labels[i].key]
		if !ok || !w.labels[i].val.match(val) {
			return false
		}
	}
	return true
}

// checkSessionPolicies compiles the session policy of every principal the
// policy can name and refuses the policy if one exceeds AWS's limit. The
// principals are the declared agents of the declared projects plus an
// undeclared agent of each; without declarations, the literal projects and
// agents that AWS rules name.
func (c *compiler) checkSessionPolicies(p *Policy) {
	type principal struct {
		pr   Principal
		path string
	}
	var all []principal
	if len(c.f.Projects) > 0 {
		for _, name := range sortedKeys(c.f.Projects) {
			proj := c.f.Projects[name]
			path := pathOf("projects", name)
			all = append(all, principal{Principal{Project: name, Labels: proj.Labels}, path})
			for _, agent := range sortedKeys(proj.Agents) {
				labels := map[string]string{}
				for k, v := range proj.Labels {
					labels[k] = v
				}
				for k, v := range proj.Agents[agent].Labels {
					labels[k] = v
				}
				all = append(all, principal{Principal{Project: name, Agent: agent, Labels: labels}, pathOf(pathOf(path, "agents"), agent)})
			}
		}
	} else {
		for _, pr := range namedPrincipals(p.rules) {
			all = append(all, principal{pr, "rules"})
		}
	}
	for _, x := range all {
		doc := p.SessionPolicy(x.pr)
		if n := len(doc.JSON()); n > MaxSessionPolicyChars {
			name := x.pr.Project
			if x.pr.Agent != "" {
				name += "/" + x.pr.Agent
			}
			if name == "" {
				name = "any principal"
			}
			c.errorf(x.path, CodeIAMTooLarge,
				"merge aws rules, use wildcards in actions or resources, or give the agent fewer AWS permissions",
				"the IAM session policy compiled for %s is %d characters; AWS allows %d (%d over)",
				name, n, MaxSessionPolicyChars, n-MaxSessionPolicyChars)
		}
	}
}

// namedPrincipals lists the principals that AWS rules can tell apart when no
// projects are declared: the project/agent pairs rules name together, each
// named project with an agent no rule names, each agent named without a
// project combined with each such project and with none, and the principal
// that no rule names.
func namedPrincipals(rules []*rule) []Principal {
	type pair = [2]string
	seen := map[pair]bool{}
	var out []Principal
	add := func(project, agent string) {
		if k := (pair{project, agent}); !seen[k] {
			seen[k] = true
			out = append(out, Principal{Project: project, Agent: agent})
		}
	}
	projects := []string{""}
	var agentsOnly []string
	for _, r := range rules {
		if r.kind != KindAWS && r.kind != kindAny {
			continue
		}
		ps, _ := literalKeys(r.who.projects)
		as, _ := literalKeys(r.who.agents)
		switch {
		case len(ps) > 0 && len(as) > 0:
			for _, proj := range ps {
				for _, agent := range as {
					add(proj, agent)
				}
			}
			projects = append(projects, ps...)
		case len(ps) > 0:
			projects = append(projects, ps...)
		case len(as) > 0:
			agentsOnly = append(agentsOnly, as...)
		}
	}
	for _, proj := range projects {
		add(proj, "")
		for _, agent := range agentsOnly {
			add(proj, agent)
		}
	}
	return out
}
