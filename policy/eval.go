package policy

import (
	"fmt"
	"strings"

	"github.com/wardenhq/warden/policy/shell"
)

// index narrows the rules to those that can match a request's project,
// agent and action service, so that evaluation does not grow with rules
// written for other principals. A rule whose selector is a pattern (or
// absent) sits in the "any" buckets and is always considered.
type index struct {
	byProject  map[string]*agentIndex
	anyProject *agentIndex
}

type agentIndex struct {
	byAgent  map[string]*serviceIndex
	anyAgent *serviceIndex
}

type serviceIndex struct {
	byService  map[string][]*rule
	anyService []*rule
}

func buildIndex(rules []*rule) index {
	idx := index{byProject: map[string]*agentIndex{}}
	for _, r := range rules {
		for _, ai := range idx.agentIndexes(r) {
			for _, si := range ai.serviceIndexes(r) {
				si.add(r)
			}
		}
	}
	return idx
}

// literalKeys returns the literal names of a selector, and whether the rule
// also belongs in the "any" bucket (a pattern, or no selector at all).
func literalKeys(ps []pattern) (keys []string, any bool) {
	if len(ps) == 0 {
		return nil, true
	}
	for _, p := range ps {
		if p.kind == patExact {
			keys = append(keys, p.lit)
		} else {
			any = true
		}
	}
	return keys, any
}

func (idx *index) agentIndexes(r *rule) []*agentIndex {
	keys, any := literalKeys(r.who.projects)
	var out []*agentIndex
	for _, k := range keys {
		if idx.byProject[k] == nil {
			idx.byProject[k] = &agentIndex{byAgent: map[string]*serviceIndex{}}
		}
		out = append(out, idx.byProject[k])
	}
	if any {
		if idx.anyProject == nil {
			idx.anyProject = &agentIndex{byAgent: map[string]*serviceIndex{}}
		}
		out = append(out, idx.anyProject)
	}
	return out
}

func (ai *agentIndex) serviceIndexes(r *rule) []*serviceIndex {
	keys, any := literalKeys(r.who.agents)
	var out []*serviceIndex
	for _, k := range keys {
		if ai.byAgent[k] == nil {
			ai.byAgent[k] = &serviceIndex{byService: map[string][]*rule{}}
		}
		out = append(out, ai.byAgent[k])
	}
	if any {
		if ai.anyAgent == nil {
			ai.anyAgent = &serviceIndex{byService: map[string][]*rule{}}
		}
		out = append(out, ai.anyAgent)
	}
	return out
}

func (si *serviceIndex) add(r *rule) {
	if r.kind == kindAny {
		si.anyService = append(si.anyService, r)
		return
	}
	seen := map[string]bool{}
	for _, a := range r.actions {
		service, _, _ := strings.Cut(a.src, ":")
		if !seen[service] {
			seen[service] = true
			si.byService[service] = append(si.byService[service], r)
		}
	}
}

// serviceOf returns the part of an action before ':' as the index keys it:
// lower-cased for AWS, whose action names are case-insensitive.
func serviceOf(action string) string {
	service, _, _ := strings.Cut(action, ":")
	for i := 0; i < len(service); i++ {
		if 'A' <= service[i] && service[i] <= 'Z' {
			return strings.ToLower(service)
		}
	}
	return service
}

// verdict is the best match found so far for one request or command.
type verdict struct {
	r       *rule
	condErr error
}

// better reports whether r takes precedence over the current best: deny
// beats approve beats allow, and between equals the earlier rule decides.
func (v *verdict) better(r *rule) bool {
	if v.r == nil {
		return true
	}
	if a, b := r.effect.rank(), v.r.effect.rank(); a != b {
		return a > b
	}
	return r.order < v.r.order
}

// Evaluate decides a request. It is pure and safe for concurrent use; for a
// request without Commands and a policy without conditions on the rules it
// considers, it does not allocate.
func (p *Policy) Evaluate(req *Request) Decision {
	if KindOf(req.Action) == KindUnknown {
		return Decision{Effect: Deny, Reason: "malformed action " + fmt.Sprintf("%q", req.Action)}
	}
	if req.Commands == nil {
		return p.decide(req, nil)
	}
	return combine(req.Commands, func(cmd *shell.Command) Decision { return p.decide(req, cmd) })
}

// decide evaluates the request, or one command of it, against the indexed
// candidate rules.
func (p *Policy) decide(req *Request, cmd *shell.Command) Decision {
	var v verdict
	service := serviceOf(req.Action)
	for _, ai := range [2]*agentIndex{p.index.byProject[req.Principal.Project], p.index.anyProject} {
		if ai == nil {
			continue
		}
		for _, si := range [2]*serviceIndex{ai.byAgent[req.Principal.Agent], ai.anyAgent} {
			if si == nil {
				continue
			}
			for _, list := range [2][]*rule{si.byService[service], si.anyService} {
				for _, r := range list {
					if v.better(r) && r.matches(req, cmd) {
						v.r = r
					}
				}
			}
		}
	}
	return v.decision(cmd)
}

func (v *verdict) decision(cmd *shell.Command) Decision {
	d := Decision{Effect: Deny, Reason: DefaultDenyReason}
	if v.r != nil {
		d = Decision{Effect: v.r.effect, Rule: v.r.id, Pos: v.r.pos, Reason: v.r.reason}
	}
	if cmd != nil {
		d.Command = cmd.Line
	}
	return d
}

// combine decides a shell line from the decisions of its commands: an
// explicit deny of any command wins, then a command no rule covers, then a
// command that needs approval; the line is allowed only if every command is.
func combine(cmds []shell.Command, decide func(*shell.Command) Decision) Decision {
	var worst Decision
	worstRank := -1
	for i := range cmds {
		d := decide(&cmds[i])
		rank := 1 // allow
		switch {
		case d.Effect == Deny && d.Rule != "":
			rank = 4
		case d.Effect == Deny:
			rank = 3
		case d.Effect == Approve:
			rank = 2
		}
		if rank > worstRank {
			worst, worstRank = d, rank
		}
		if rank == 4 {
			break
		}
	}
	return worst
}

// stage names the check at which a rule stopped matching.
type stage uint8

const (
	matched stage = iota
	stageAction
	stageProject
	stageAgent
	stageLabel
	stageResource
	stageNoCommand
	stageCommand
	stageCondError
	stageCondFalse
)

// matches reports whether the rule applies to the request (or one command
// of it). It is the hot path: it allocates nothing unless a condition runs.
func (r *rule) matches(req *Request, cmd *shell.Command) bool {
	s, _ := r.match(req, cmd)
	return s == matched
}

// match runs the rule's checks in order of cost and returns the stage that
// failed (matched if none), with the condition's error if it had one.
func (r *rule) match(req *Request, cmd *shell.Command) (stage, error) {
	if r.kind != kindAny && !anyMatch(r.actions, req.Action) {
		return stageAction, nil
	}
	pr := &req.Principal
	if r.who.projects != nil && !anyMatch(r.who.projects, pr.Project) {
		return stageProject, nil
	}
	if r.who.agents != nil && !anyMatch(r.who.agents, pr.Agent) {
		return stageAgent, nil
	}
	for i := range r.who.labels {
		lm := &r.who.labels[i]
		if val, ok := pr.Labels[lm.key]; !ok || !lm.val.match(val) {
			return stageLabel, nil
		}
	}
	if r.resources != nil && !anyMatch(r.resources, req.Resource) {
		return stageResource, nil
	}
	if r.commands != nil {
		if cmd == nil {
			return stageNoCommand, nil
		}
		if !r.matchCommand(cmd) {
			return stageCommand, nil
		}
	}
	if r.cond != nil {
		ok, err := r.cond.eval(req)
		if err != nil {
			// Fail closed: a broken condition cannot allow, and cannot
			// stop a deny or an approval from applying.
			if r.effect == Allow {
				return stageCondError, err
			}
			return matched, err
		}
		if !ok {
			return stageCondFalse, nil
		}
	}
	return matched, nil
}

// why says, for a person, why the rule stopped matching at stage s.
func (r *rule) why(s stage, req *Request, cmd *shell.Command, condErr error) string {
	pr := &req.Principal
	switch s {
	case stageAction:
		return fmt.Sprintf("action %q does not match %s", req.Action, srcs(r.actions))
	case stageProject:
		return fmt.Sprintf("project %q does not match %s", pr.Project, srcs(r.who.projects))
	case stageAgent:
		return fmt.Sprintf("agent %q does not match %s", pr.Agent, srcs(r.who.agents))
	case stageLabel:
		for _, lm := range r.who.labels {
			if val, ok := pr.Labels[lm.key]; !ok || !lm.val.match(val) {
				if !ok {
					return fmt.Sprintf("label %s is not set (rule wants %q)", lm.key, lm.val.text)
				}
				return fmt.Sprintf("label %s=%q does not match %q", lm.key, val, lm.val.text)
			}
		}
	case stageResource:
		return fmt.Sprintf("resource %q does not match %s", req.Resource, srcs(r.resources))
	case stageNoCommand:
		return "the request runs no shell command"
	case stageCommand:
		return fmt.Sprintf("command %q does not match %s", cmd.Line, srcs(r.commands))
	case stageCondError:
		return fmt.Sprintf("condition failed (an allow fails closed): %v", condErr)
	case stageCondFalse:
		return "condition is false: " + r.cond.src
	}
	return ""
}

// matchCommand matches one command of a shell line. A command with a
// dynamic part (a variable, a substitution) is matched by what is known of
// it: a deny or approve pattern matches if the literal start could grow into
// a match; an allow pattern only if it ends in * and covers the literal start,
// so that whatever the expansion yields stays inside it.
func (r *rule) matchCommand(cmd *shell.Command) bool {
	for i := range r.commands {
		p := &r.commands[i]
		switch {
		case !cmd.Dynamic:
			if p.match(cmd.Line) {
				return true
			}
		case r.effect != Allow:
			if p.matchPrefix(cmd.Prefix) {
				return true
			}
		default:
			if strings.HasSuffix(p.src, "*") && p.match(cmd.Prefix) {
				return true
			}
		}
	}
	return false
}

func srcs(ps []pattern) string {
	q := make([]string, len(ps))
	for i, p := range ps {
		q[i] = fmt.Sprintf("%q", p.text)
	}
	return strings.Join(q, ", ")
}

// RuleTrace is what Explain found for one rule.
type RuleTrace struct {
	Rule    string
	Effect  Effect
	Pos     Position
	Matched bool
	// Why says why the rule did not match; empty when it matched.
	Why string
	// CondErr is set when the rule's condition failed to evaluate; the rule
	// then counts as matching unless it allows (fail closed).
	CondErr string
	// Command is the shell command the trace is for, in a shell request.
	Command string
	// OtherAction is set when the rule is for other actions altogether.
	OtherAction bool
}

// Explain decides the request like Evaluate and also reports, for every rule
// in the policy, whether it matched and why not. It is for people and tools,
// not the hot path.
func (p *Policy) Explain(req *Request) (Decision, []RuleTrace) {
	var traces []RuleTrace
	decide := func(cmd *shell.Command) Decision {
		var v verdict
		for _, r := range p.rules {
			tr := RuleTrace{Rule: r.id, Effect: r.effect, Pos: r.pos}
			if cmd != nil {
				tr.Command = cmd.Line
			}
			st, condErr := r.match(req, cmd)
			tr.Matched, tr.OtherAction = st == matched, st == stageAction
			if st != matched {
				tr.Why = r.why(st, req, cmd, condErr)
			} else if condErr != nil {
				tr.CondErr = condErr.Error()
			}
			if tr.Matched && v.better(r) {
				v.r = r
			}
			traces = append(traces, tr)
		}
		return v.decision(cmd)
	}
	if KindOf(req.Action) == KindUnknown {
		return p.Evaluate(req), nil
	}
	if req.Commands == nil {
		return decide(nil), traces
	}
	return combine(req.Commands, decide), traces
}
