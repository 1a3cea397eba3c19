package scenario

import (
	"context"
	"errors"
	"fmt"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/wardenhq/warden/policy"
)

// Decision is an engine's answer to one request.
type Decision struct {
	Effect Effect
	// Rule is the ID of a deciding rule, where the engine reports one
	// (Warden, Cedar); empty for a default deny and for Rego, whose boolean
	// query does not say which body matched.
	Rule string
}

// Decide answers the i-th of the requests it was prepared for.
type Decide func(i int) (Decision, error)

// Compiled is a scenario's policy compiled by one engine.
type Compiled interface {
	// Prepare converts requests to the engine's native input, once, so that
	// timing Decide measures the decision alone, in every engine.
	Prepare(reqs []Request) (Decide, error)
}

// Engine is one policy engine under comparison.
type Engine interface {
	// Name is the engine's short name: warden, cedar or rego.
	Name() string
	// Render writes the scenario in the engine's policy language.
	Render(s *Scenario) ([]byte, error)
	// Compile parses and compiles rendered policy text of scenario s.
	Compile(s *Scenario, src []byte) (Compiled, error)
}

// Engines returns the engines under comparison, Warden first.
func Engines() []Engine {
	return []Engine{Warden{}, Cedar{}, Rego{}}
}

// Build renders and compiles the scenario with e and prepares its requests.
func Build(e Engine, s *Scenario) (Decide, error) {
	src, err := e.Render(s)
	if err != nil {
		return nil, fmt.Errorf("render %s for %s: %w", s.Name, e.Name(), err)
	}
	c, err := e.Compile(s, src)
	if err != nil {
		return nil, fmt.Errorf("compile %s for %s: %w", s.Name, e.Name(), err)
	}
	d, err := c.Prepare(s.Requests)
	if err != nil {
		return nil, fmt.Errorf("prepare %s requests for %s: %w", s.Name, e.Name(), err)
	}
	return d, nil
}

// Warden is the Warden policy engine.
type Warden struct{}

var _ Engine = Warden{}

// Name returns "warden".
func (Warden) Name() string { return "warden" }

// Render returns the scenario as a Warden policy file.
func (Warden) Render(s *Scenario) ([]byte, error) { return s.Warden() }

// Compile loads the policy with policy.Load.
func (Warden) Compile(s *Scenario, src []byte) (Compiled, error) {
	p, err := policy.Load(s.Name+".yaml", src)
	if err != nil {
		return nil, fmt.Errorf("load warden policy: %w", err)
	}
	return wardenPolicy{p}, nil
}

type wardenPolicy struct{ p *policy.Policy }

func (w wardenPolicy) Prepare(reqs []Request) (Decide, error) {
	in := make([]policy.Request, len(reqs))
	for i, r := range reqs {
		in[i] = policy.Request{
			Principal: policy.Principal{Project: r.Principal.Project, Agent: r.Principal.Agent},
			Action:    r.Action,
			Resource:  r.Resource,
		}
	}
	return func(i int) (Decision, error) {
		d := w.p.Evaluate(&in[i])
		switch d.Effect {
		case policy.Allow:
			return Decision{Effect: Allow, Rule: d.Rule}, nil
		case policy.Deny:
			return Decision{Effect: Deny, Rule: d.Rule}, nil
		}
		return Decision{Rule: d.Rule}, fmt.Errorf("unexpected effect %s by rule %q", d.Effect, d.Rule)
	}, nil
}

// Cedar is cedar-go, the Go implementation of Cedar.
type Cedar struct{}

var _ Engine = Cedar{}

// Name returns "cedar".
func (Cedar) Name() string { return "cedar" }

// Render returns the scenario as a Cedar policy set.
func (Cedar) Render(s *Scenario) ([]byte, error) { return s.Cedar() }

// Compile parses the policies, which cedar-go compiles as it parses, and
// names each by its @id annotation.
func (Cedar) Compile(s *Scenario, src []byte) (Compiled, error) {
	list, err := cedar.NewPolicyListFromBytes(s.Name+".cedar", src)
	if err != nil {
		return nil, fmt.Errorf("parse cedar policies: %w", err)
	}
	ps := cedar.NewPolicySet()
	for i, p := range list {
		id := cedar.PolicyID(p.Annotations()["id"])
		if id == "" {
			return nil, fmt.Errorf("cedar policy %d has no @id", i)
		}
		if !ps.Add(id, p) {
			return nil, fmt.Errorf("duplicate cedar policy id %q", id)
		}
	}
	entities := cedar.EntityMap{}
	for _, pr := range s.Principals {
		project := cedar.NewEntityUID(CedarProjectType, cedar.String(pr.Project))
		agent := cedar.NewEntityUID(CedarAgentType, cedar.String(CedarAgentID(pr)))
		entities[project] = cedar.Entity{UID: project}
		entities[agent] = cedar.Entity{UID: agent, Parents: cedar.NewEntityUIDSet(project)}
	}
	return &cedarPolicy{ps: ps, entities: entities}, nil
}

type cedarPolicy struct {
	ps       *cedar.PolicySet
	entities cedar.EntityMap
}

// cedarInput is one request with the entities it is decided against: the
// registered agents and projects, and the request's resource.
type cedarInput struct {
	req      cedar.Request
	resource cedar.Entity
	agents   cedar.EntityMap
}

// Get implements cedar.EntityGetter.
func (c *cedarInput) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	if uid == c.resource.UID {
		return c.resource, true
	}
	return c.agents.Get(uid)
}

func (c *cedarPolicy) Prepare(reqs []Request) (Decide, error) {
	in := make([]cedarInput, len(reqs))
	for i, r := range reqs {
		res := cedar.NewEntityUID(CedarResourceType, cedar.String(r.Resource))
		in[i] = cedarInput{
			req: cedar.Request{
				Principal: cedar.NewEntityUID(CedarAgentType, cedar.String(CedarAgentID(r.Principal))),
				Action:    cedar.NewEntityUID(CedarActionType, cedar.String(r.Action)),
				Resource:  res,
				Context:   cedar.NewRecord(nil),
			},
			resource: cedar.Entity{
				UID:        res,
				Attributes: cedar.NewRecord(cedar.RecordMap{"path": cedar.String(r.Resource)}),
			},
			agents: c.entities,
		}
	}
	return func(i int) (Decision, error) {
		ok, diag := c.ps.IsAuthorized(&in[i], in[i].req)
		if len(diag.Errors) > 0 {
			// A policy that fails to evaluate is skipped, which for a
			// forbid would fail open: treat it as a broken comparison.
			return Decision{}, fmt.Errorf("cedar policy %s: %s", diag.Errors[0].PolicyID, diag.Errors[0].Message)
		}
		d := Decision{Effect: Deny}
		if ok == cedar.Allow {
			d.Effect = Allow
		}
		if len(diag.Reasons) > 0 {
			d.Rule = string(diag.Reasons[0].PolicyID)
		}
		return d, nil
	}, nil
}

// Rego is the Open Policy Agent's Rego, prepared once with PrepareForEval.
type Rego struct{}

var _ Engine = Rego{}

// Name returns "rego".
func (Rego) Name() string { return "rego" }

// Render returns the scenario as a Rego module.
func (Rego) Render(s *Scenario) ([]byte, error) { return s.Rego() }

// Compile parses and compiles the module and prepares the query.
func (Rego) Compile(s *Scenario, src []byte) (Compiled, error) {
	pq, err := rego.New(
		rego.Query(RegoQuery),
		rego.Module(s.Name+".rego", string(src)),
	).PrepareForEval(context.Background())
	if err != nil {
		return nil, fmt.Errorf("prepare rego query: %w", err)
	}
	return regoPolicy{pq}, nil
}

type regoPolicy struct{ pq rego.PreparedEvalQuery }

var errRegoResult = errors.New("rego query returned no boolean")

func (r regoPolicy) Prepare(reqs []Request) (Decide, error) {
	in := make([]ast.Value, len(reqs))
	for i, q := range reqs {
		v, err := ast.InterfaceToValue(map[string]any{
			"principal": map[string]any{"project": q.Principal.Project, "agent": q.Principal.Agent},
			"action":    q.Action,
			"resource":  q.Resource,
		})
		if err != nil {
			return nil, fmt.Errorf("convert request %d to rego input: %w", i, err)
		}
		in[i] = v
	}
	ctx := context.Background()
	return func(i int) (Decision, error) {
		rs, err := r.pq.Eval(ctx, rego.EvalParsedInput(in[i]))
		if err != nil {
			return Decision{}, fmt.Errorf("evaluate rego query: %w", err)
		}
		if len(rs) != 1 || len(rs[0].Expressions) != 1 {
			return Decision{}, errRegoResult
		}
		allow, ok := rs[0].Expressions[0].Value.(bool)
		if !ok {
			return Decision{}, errRegoResult
		}
		if allow {
			return Decision{Effect: Allow}, nil
		}
		return Decision{Effect: Deny}, nil
	}, nil
}
