package audit

import (
	"context"
	"path"
	"strings"
	"time"
)

// Filter selects audit records. Empty fields select everything.
type Filter struct {
	Session string
	Project string
	Agent   string
	// Action is a glob (path.Match syntax), e.g. "tool:*" or "git:push".
	Action string
	// Effect is allow, deny or approve; "denied" selects every refusal
	// (deny, approve and request.refused).
	Effect string
	Rule   string
	Code   Code
	Since  time.Time // inclusive
	Until  time.Time // exclusive
}

// Querier finds records.
type Querier interface {
	// Query returns up to limit records after seq after that match f, in order.
	Query(ctx context.Context, f Filter, after int64, limit int) ([]Record, error)
}

// Match reports whether r passes the filter.
func (f *Filter) Match(r *Record) bool {
	switch {
	case f.Session != "" && r.Session != f.Session,
		f.Project != "" && r.Project != f.Project,
		f.Agent != "" && r.Agent != f.Agent,
		f.Rule != "" && r.Rule != f.Rule,
		f.Code != "" && r.Code != f.Code,
		!f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	}
	if f.Action != "" {
		if ok, err := path.Match(f.Action, r.Action); err != nil || !ok {
			return false
		}
	}
	switch f.Effect {
	case "":
	case "denied":
		return r.Code == DecisionDeny || r.Code == DecisionApproval || r.Code == RequestRefused
	default:
		return r.Effect == f.Effect && strings.HasPrefix(string(r.Code), "decision.")
	}
	return true
}
