package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wardenhq/warden/policy/yamldoc"
)

// gitActions are the git actions that exist.
var gitActions = []string{"git:push", "git:fetch", "git:delete-ref"}

// compileRule validates and compiles one rule; nil when it is invalid.
func (c *compiler) compileRule(d *RuleDecl, i int, ids map[string]string) *rule {
	path := pathOf("rules", i)
	nerr := len(c.errs.list)
	r := &rule{desc: d.Description, order: i, pos: c.at(path)}
	switch d.Effect {
	case "allow":
		r.effect = Allow
	case "approve":
		r.effect = Approve
	default:
		r.effect = Deny
	}
	id := d.ID
	if id == "" {
		id = derivedID("r-", d.Effect, d.Who.Project, d.Who.Agent, d.Who.Labels, d.Action, d.Resource, d.Command, d.When)
	}
	r.id = c.claimID(path, "rule", id, d.ID != "", ids)
	r.who = c.compileWho(pathOf(path, "who"), d.Who)
	r.kind = c.compileActions(pathOf(path, "action"), d.Action, r)
	c.compileResources(pathOf(path, "resource"), d.Resource, r)
	c.compileCommands(pathOf(path, "command"), d.Command, d.IgnoreCase, r)
	if d.When != "" {
		cond, err := c.conds.compile(d.When)
		if err != nil {
			c.errs.addOnce(c.exprPos(c.at(pathOf(path, "when")), err), CodeBadCondition,
				"see the condition reference in the README", "%v", err)
		}
		r.cond = cond
	}
	if len(c.errs.list) > nerr {
		return nil
	}
	r.reason = ruleReason(r)
	return r
}

// exprPos places a condition error within the file: the expression starts
// at the YAML value (after its quote, or on the lines after a | or > block
// indicator).
func (c *compiler) exprPos(value Position, err error) Position {
	var ce *conditionError
	lines := strings.Split(string(c.src), "\n")
	if !errors.As(err, &ce) || value.Line < 1 || value.Line > len(lines) {
		return value
	}
	text := []rune(lines[value.Line-1])
	if value.Column < 1 || value.Column > len(text) {
		return value
	}
	switch text[value.Column-1] {
	case '|', '>':
		line := value.Line + ce.line
		if line > len(lines) {
			return value
		}
		first := lines[value.Line] // the block's indentation is its first line's
		indent := len(first) - len(strings.TrimLeft(first, " "))
		return Position{File: value.File, Line: line, Column: indent + ce.col}
	case '\'', '"':
		if ce.line == 1 {
			return Position{File: value.File, Line: value.Line, Column: value.Column + ce.col}
		}
	default:
		if ce.line == 1 {
			return Position{File: value.File, Line: value.Line, Column: value.Column + ce.col - 1}
		}
	}
	return value
}

// ruleReason is the reason given when the rule decides; built once here so
// that evaluation does not allocate.
func ruleReason(r *rule) string {
	verb := map[Effect]string{Allow: "allowed", Deny: "denied", Approve: "needs approval"}[r.effect]
	s := fmt.Sprintf("%s by rule %q (%s)", verb, r.id, r.pos)
	if r.desc != "" {
		s += ": " + r.desc
	}
	return s
}

// compileActions checks that a rule's actions are well formed and of one
// kind, and returns that kind.
func (c *compiler) compileActions(path string, actions StringList, r *rule) Kind {
	if len(actions) == 0 {
		c.errorf(path, CodeMissingField, "e.g. action: git:push", "a rule needs at least one action")
		return KindUnknown
	}
	kind := KindUnknown
	for i, a := range actions {
		p := pathOf(path, i)
		k := c.checkAction(p, a)
		if k == KindUnknown {
			continue
		}
		if kind != KindUnknown && k != kind {
			c.errorf(p, CodeBadPattern, "split the rule into one rule per kind",
				"action %q is %s, but the rule's first action is %s; a rule covers one kind", a, k, kind)
			continue
		}
		kind = k
		r.actions = append(r.actions, compilePattern(a, k == KindAWS))
	}
	return kind
}

// checkAction validates one action pattern and returns its kind.
func (c *compiler) checkAction(path, a string) Kind {
	if a == "*" {
		return kindAny
	}
	service, name, ok := strings.Cut(a, ":")
	if !ok || service == "" || name == "" {
		c.errorf(path, CodeBadPattern, "write kind:name, e.g. git:push, s3:GetObject, tool:Bash, llm:invoke",
			"action %q has no kind prefix", a)
		return KindUnknown
	}
	if hasWildcard(service) {
		c.errorf(path, CodeBadPattern, "name the service, e.g. s3:*", "action %q has a wildcard in its service", a)
		return KindUnknown
	}
	k := KindOf(a)
	switch k {
	case KindGit:
		if !matchesAny(a, gitActions) {
			c.errorf(path, CodeBadPattern, "git actions: "+strings.Join(gitActions, ", "),
				"unknown git action %q%s", a, yamldoc.DidYouMean(a, gitActions))
			return KindUnknown
		}
	case KindLLM:
		if !matchesAny(a, []string{"llm:invoke"}) {
			c.errorf(path, CodeBadPattern, "the llm action is llm:invoke", "unknown llm action %q%s", a, yamldoc.DidYouMean(a, []string{"llm:invoke"}))
			return KindUnknown
		}
	case KindAWS:
		if !serviceR.MatchString(service) {
			c.errorf(path, CodeBadPattern, "AWS service prefixes are lowercase, e.g. s3, bedrock, dynamodb",
				"invalid AWS service %q in action %q", service, a)
			return KindUnknown
		}
	}
	return k
}

// matchesAny reports whether the pattern pat matches one of names.
func matchesAny(pat string, names []string) bool {
	p := compilePattern(pat, false)
	for _, n := range names {
		if p.match(n) {
			return true
		}
	}
	return false
}

// compileResources validates resource patterns for the rule's kind.
func (c *compiler) compileResources(path string, resources StringList, r *rule) {
	if len(resources) == 0 {
		return
	}
	if r.kind == kindAny {
		c.errorf(path, CodeBadPattern, "name the actions the resources belong to", "a rule for every action (*) cannot name resources")
		return
	}
	for i, s := range resources {
		p := pathOf(path, i)
		if s == "" {
			c.errorf(p, CodeBadPattern, "", "empty resource pattern")
			continue
		}
		if s != "*" {
			switch r.kind {
			case KindAWS:
				if msg := checkARNPattern(s); msg != "" {
					c.errorf(p, CodeBadPattern, "write arn:partition:service:region:account:resource, e.g. arn:aws:s3:::data-lake/raw/*", "%s", msg)
					continue
				}
			case KindGit:
				if !gitResourceNamesRef(s) {
					c.errorf(p, CodeBadPattern, "write host/org/repo:refs/heads/branch, e.g. github.com/acme/app:refs/heads/feature/*",
						"git resource %q names no ref", s)
					continue
				}
			case KindLLM:
				if !strings.Contains(s, "/") && !hasWildcard(s) {
					c.errorf(p, CodeBadPattern, "write provider/model, e.g. bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0",
						"llm resource %q names no provider", s)
					continue
				}
			}
		}
		r.resources = append(r.resources, compilePattern(s, false))
	}
}

// gitResourceNamesRef reports whether a git resource pattern reaches a ref:
// repo:refs/…, repo:*, or a wildcard that runs over the colon (org/*).
func gitResourceNamesRef(s string) bool {
	_, ref, ok := strings.Cut(s, ":")
	if !ok {
		return strings.Contains(s, "*")
	}
	return strings.HasPrefix(ref, "refs/") || strings.HasPrefix(ref, "*")
}

// checkARNPattern returns what is wrong with an ARN pattern, or "". Wildcards
// in the partition, region and account segments are allowed only at a
// segment's end, where IAM's per-segment matching and a match over the whole
// ARN agree; the service segment takes none, as in IAM.
func checkARNPattern(s string) string {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return fmt.Sprintf("aws resource %q is not an ARN", s)
	}
	if parts[2] == "" || hasWildcard(parts[2]) {
		return fmt.Sprintf("ARN %q needs a literal service segment", s)
	}
	for _, seg := range []string{parts[1], parts[3], parts[4]} {
		if strings.Contains(seg, "?") || strings.Contains(strings.TrimSuffix(seg, "*"), "*") {
			return fmt.Sprintf("ARN %q has a wildcard inside a partition, region or account segment; only a trailing * is allowed there", s)
		}
	}
	if parts[5] == "" {
		return fmt.Sprintf("ARN %q has an empty resource segment", s)
	}
	return ""
}

// compileCommands validates shell command patterns.
func (c *compiler) compileCommands(path string, commands StringList, fold bool, r *rule) {
	if len(commands) == 0 {
		if fold {
			c.errorf(pathOf(path[:strings.LastIndexByte(path, '.')], "ignore_case"), CodeInvalidValue, "", "ignore_case applies to command patterns, and the rule has none")
		}
		return
	}
	if r.kind != KindTool {
		c.errorf(path, CodeBadPattern, "command patterns belong to tool rules such as action: tool:Bash",
			"command patterns need a tool action, the rule is %s", r.kind)
		return
	}
	for i, s := range commands {
		p := pathOf(path, i)
		norm := strings.Join(strings.Fields(s), " ")
		if norm == "" {
			c.errorf(p, CodeBadPattern, "", "empty command pattern")
			continue
		}
		prog, _, _ := strings.Cut(norm, " ")
		if strings.Contains(prog, "/") {
			c.errorf(p, CodeBadPattern, "write the program's base name: commands are matched after /usr/bin/x becomes x",
				"command pattern %q names the program by path", s)
			continue
		}
		r.commands = append(r.commands, compilePattern(norm, fold))
	}
}
