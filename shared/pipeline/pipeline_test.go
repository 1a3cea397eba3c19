package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/watchdog"
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

// brokenCounts is a watchdog store that cannot be reached.
type brokenCounts struct{}

func (brokenCounts) Update(context.Context, string, time.Time, time.Duration, func(*watchdog.Session)) error {
	return errors.New("dynamodb: connection refused")
}
func (brokenCounts) Forget(context.Context, string) error {
	return errors.New("dynamodb: connection refused")
}

// TestWatchdogStoreDownRefuses: a request the watchdog cannot count is
// refused (503), never let through uncounted; a model call's result or
// tokens it cannot count are logged.
func TestWatchdogStoreDownRefuses(t *testing.T) {
	t.Parallel()
	pol, err := policy.Load("p.yaml", []byte("version: 1\nwatchdog: {repeated_calls: {alert: 5, pause: 10}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := &Watchdog{Dog: watchdog.New(watchdog.Config{Store: brokenCounts{}}), Policy: staticPolicy{pol},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sess := identity.Session{ID: "s1", Project: "web", Agent: "claude"}
	ref := w.request(t.Context(), sess, &policy.Request{Action: "tool:Bash", Resource: "make test"}, nil, false)
	if ref == nil || ref.Status != http.StatusServiceUnavailable || !strings.Contains(ref.Message, "watchdog cannot count") {
		t.Errorf("refusal %+v, want 503 saying the watchdog cannot count", ref)
	}
	w.Upstream(t.Context(), sess, 429) // logged, not panicking
}

// ctxSink refuses an append whose context is done, as a store does.
type ctxSink struct{ audit.MemorySink }

func (s *ctxSink) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	if err := ctx.Err(); err != nil {
		return audit.Record{}, err
	}
	return s.MemorySink.Append(ctx, r)
}

// TestOutcomeAfterTheCallerLeft: what happened is recorded even when the
// caller has gone (its request's context cancelled).
func TestOutcomeAfterTheCallerLeft(t *testing.T) {
	t.Parallel()
	sink := &ctxSink{}
	p := Pipeline{Audit: sink}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Outcome(ctx, identity.Session{ID: "s1", Project: "p", Agent: "a"}, audit.Record{Ref: "r1", Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	if recs := sink.Records(); len(recs) != 1 || recs[0].Ref != "r1" || recs[0].Session != "s1" {
		t.Fatalf("records %+v", recs)
	}
}
