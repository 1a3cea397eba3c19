package budgettest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/internal/suite"
)

// RunRates checks a RateStore through budget.Limiter: the request and
// token limits as the limiter computes them, keys kept apart, and many
// limiters sharing the store (one per server) never allowing more than the
// limit together.
func RunRates(t *testing.T, newStore func(t *testing.T) budget.RateStore) {
	suite.Run(t, newStore, []suite.Case[budget.RateStore]{
		{Name: "Requests", Run: testRateRequests},
		{Name: "Tokens", Run: testRateTokens},
		{Name: "KeysApart", Run: testRateKeysApart},
		{Name: "SharedByServers", Run: testRateShared},
	})
}

func testRateRequests(t *testing.T, s budget.RateStore) {
	pol := Policy(t, "rate_limits:\n  - {id: rpm, scope: session, requests: 10, per: 1m}\n")
	l := &budget.Limiter{Store: s}
	p := policy.Principal{Project: "proj", Agent: "coder", Session: "s1"}
	for i := range 10 {
		if err := l.Allow(ctx, pol, p, "git:push", noon); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	err := l.Allow(ctx, pol, p, "git:push", noon)
	if want := "rate limit rpm for session s1: 10 requests per 1m, retry in 6s"; err == nil || err.Error() != want {
		t.Fatalf("call 11: %v, want %q", err, want)
	}
	// A refused call counts nothing; 6 s later there is room for one.
	if err := l.Allow(ctx, pol, p, "git:push", noon.Add(6*time.Second)); err != nil {
		t.Fatalf("6 s later: %v", err)
	}
	if err := l.Allow(ctx, pol, p, "git:push", noon.Add(6*time.Second)); err == nil {
		t.Fatal("a second call 6 s later was allowed")
	}
}

func testRateTokens(t *testing.T, s budget.RateStore) {
	pol := Policy(t, "rate_limits:\n  - {id: tpm, scope: project, action: \"llm:*\", tokens: 1000, per: 1m}\n")
	l := &budget.Limiter{Store: s}
	p := policy.Principal{Project: "proj", Agent: "coder", Session: "s1"}
	if err := l.Allow(ctx, pol, p, "llm:invoke", noon); err != nil {
		t.Fatal(err)
	}
	if err := l.AddTokens(ctx, pol, p, "llm:invoke", 1500, noon); err != nil {
		t.Fatal(err)
	}
	// 500 tokens in debt: refused until the refill pays it back and one
	// more is in (30 s at 1,000 a minute, and a little).
	err := l.Allow(ctx, pol, p, "llm:invoke", noon.Add(29*time.Second))
	if lim, ok := errors.AsType[*budget.Limited](err); !ok || !lim.Tokens || lim.RetryAfter != 2*time.Second {
		t.Fatalf("29 s later: %v, want refused for tokens, retry in 2s", err)
	}
	if err := l.Allow(ctx, pol, p, "llm:invoke", noon.Add(31*time.Second)); err != nil {
		t.Fatalf("31 s later: %v", err)
	}
}

// testRateKeysApart: each scope value has its counter, whatever it holds.
func testRateKeysApart(t *testing.T, s budget.RateStore) {
	pol := Policy(t, "rate_limits:\n  - {id: a, scope: session, requests: 1, per: 1h}\n")
	l := &budget.Limiter{Store: s}
	for _, session := range []string{"b#c", "b", "b#c#", "#", "c"} {
		if err := l.Allow(ctx, pol, policy.Principal{Project: "p", Session: session}, "git:push", noon); err != nil {
			t.Fatalf("session %q: %v", session, err)
		}
	}
	if err := l.Allow(ctx, pol, policy.Principal{Project: "p", Session: "b#c"}, "git:push", noon); err == nil {
		t.Fatal("session b#c: a second call allowed")
	}
}

// testRateShared: forty calls at once, each through a limiter of its own
// (as if on forty servers) sharing the store, against a limit of ten: ten
// allowed, the others refused by the limit.
func testRateShared(t *testing.T, s budget.RateStore) {
	pol := Policy(t, "rate_limits:\n  - {id: hourly, scope: project, requests: 10, per: 1h}\n")
	var mu sync.Mutex
	allowed, limited := 0, 0
	var other []error
	var wg sync.WaitGroup
	for range 40 {
		l := &budget.Limiter{Store: s}
		wg.Go(func() {
			err := l.Allow(context.Background(), pol, policy.Principal{Project: "proj", Session: "s"}, "git:push", noon)
			mu.Lock()
			defer mu.Unlock()
			switch _, ok := errors.AsType[*budget.Limited](err); {
			case err == nil:
				allowed++
			case ok:
				limited++
			default:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	if allowed != 10 || limited != 30 || len(other) != 0 {
		t.Errorf("allowed %d, limited %d, other errors %v; want 10 and 30", allowed, limited, other)
	}
}
