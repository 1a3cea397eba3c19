package pipeline

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/identity"
)

type noPolicy struct{}

func (noPolicy) Current() *policy.Policy { return nil }

type brokenAuth struct{}

func (brokenAuth) Authenticate(context.Context, string) (identity.Session, error) {
	return identity.Session{}, errors.New("database is locked")
}

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) Current() *policy.Policy { return s.p }

type fixedAuth struct{ s identity.Session }

func (f fixedAuth) Authenticate(context.Context, string) (identity.Session, error) { return f.s, nil }

type overBudget struct{}

func (overBudget) Reserve(context.Context, identity.Session, *policy.Request, Cost) (Hold, *Refusal) {
	return nil, &Refusal{Status: http.StatusTooManyRequests, Message: "daily budget exhausted"}
}

// TestFailsClosed checks each broken dependency refuses, with the status a
// front end answers and a record of the refusal where one can be written.
func TestFailsClosed(t *testing.T) {
	t.Parallel()
	p, err := policy.Load("p.yaml", []byte("version: 1\nrules:\n  - {id: all, effect: allow, action: \"*\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	sess := identity.Session{ID: "s1", Project: "p", Agent: "a"}
	call := Call{Token: "t", Request: policy.Request{Action: "tool:Read", Resource: "/w/x"}, Args: map[string]any{"api_key": "sk-secret"}}
	tests := []struct {
		name    string
		pipe    Pipeline
		status  int
		allowed bool
		code    audit.Code
	}{
		{"allowed", Pipeline{Auth: fixedAuth{sess}, Policy: staticPolicy{p}, Approvals: NoApprovals{}, Budget: NoBudget{}}, 0, true, audit.DecisionAllow},
		{"no policy loaded", Pipeline{Auth: fixedAuth{sess}, Policy: noPolicy{}, Approvals: NoApprovals{}, Budget: NoBudget{}}, 503, false, audit.RequestRefused},
		{"session store down", Pipeline{Auth: brokenAuth{}, Policy: staticPolicy{p}, Approvals: NoApprovals{}, Budget: NoBudget{}}, 503, false, audit.RequestRefused},
		{"budget refuses", Pipeline{Auth: fixedAuth{sess}, Policy: staticPolicy{p}, Approvals: NoApprovals{}, Budget: overBudget{}}, 429, false, audit.DecisionDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := &audit.MemorySink{}
			tt.pipe.Audit = sink
			v := tt.pipe.Decide(context.Background(), call)
			if v.Allowed != tt.allowed || (!tt.allowed && v.Refusal.Status != tt.status) {
				t.Errorf("verdict %+v", v)
			}
			recs := sink.Records()
			if len(recs) != 1 || recs[0].Code != tt.code {
				t.Fatalf("records %+v", recs)
			}
			if string(recs[0].Args) != `{"api_key":"[REDACTED]"}` {
				t.Errorf("args recorded as %s", recs[0].Args)
			}
		})
	}
}
