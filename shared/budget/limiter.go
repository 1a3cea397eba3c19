package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/textfmt"
)

// DefaultMaxKeys is how many (rate limit, scope value) counters a Limiter
// keeps at most unless told otherwise.
const DefaultMaxKeys = 100_000

// Limiter enforces the policy's rate limits. Each (rate limit ID, scope
// value) has a token bucket per dimension:
//
//   - requests: holds requests + burst, refills at requests per window,
//     and each allowed call takes one. Over any long stretch the rate is
//     requests per window; a quiet key may spend its burst at once.
//   - tokens: holds tokens, refills at tokens per window, and AddTokens
//     takes the tokens a call used, into debt if need be. A call is
//     refused while less than one token is left, until the refill pays
//     the debt back.
//
// The buckets are kept by a RateStore: by default in this process's
// memory, bounded — a counter back at full is forgotten (it holds nothing
// a fresh one would not), and once MaxKeys counters are in use a new key
// is refused, failing closed, until some go idle. Servers that share their
// limits (the Lambda functions) share a store (DynamoDB).
//
// The zero value is ready; methods are safe for concurrent use.
type Limiter struct {
	// Store keeps the counters; nil: this process's memory.
	Store RateStore
	// MaxKeys caps the counters kept in memory; 0 means DefaultMaxKeys.
	MaxKeys int

	once sync.Once
	mem  MemoryRates
}

// RateKey names a counter: a rate limit's ID and the scope value it
// counts (a project, agent or session).
type RateKey struct{ Limit, Scope string }

// Bucket is one counter: what was left of each dimension at At, and when
// it is back at full if not used again (after which a store may forget
// it: a fresh one holds the same). The zero Bucket is a fresh one.
type Bucket struct {
	Reqs, Toks float64
	At, Full   time.Time
}

// RateStore keeps a Limiter's counters. Update hands fn the counters of
// keys as stored (a zero Bucket for one it does not hold) and stores what
// fn left in them if fn returns nil; fn's error is Update's. An Update is
// atomic against the others on the same keys: a store shared by several
// servers starts over when one of them changed meanwhile, so fn may run
// more than once. With strict, a store that bounds its counters refuses
// (ErrLimiterFull) to take new ones past its bound; now is the time of
// the call, for a store that forgets the counters back at full.
type RateStore interface {
	Update(ctx context.Context, keys []RateKey, now time.Time, strict bool, fn func([]Bucket) error) error
}

// Limited is the error of Allow when a rate limit refuses a call.
type Limited struct {
	// Limit is the rate limit's ID; Scope is project, agent or session,
	// and Key the scope value.
	Limit, Scope, Key string
	// Tokens is true when the token limit, not the request limit, refused.
	Tokens bool
	// Max is the limit per window: requests (without burst) or tokens.
	Max int64
	Per time.Duration
	// RetryAfter is how long until the call would be allowed, rounded up
	// to a whole second.
	RetryAfter time.Duration
}

// Error reads "rate limit session-rpm for session d97e2169: 60 requests
// per 1m, retry in 2s".
func (e *Limited) Error() string {
	unit := "request"
	if e.Tokens {
		unit = "token"
	}
	if e.Max != 1 {
		unit += "s"
	}
	what := textfmt.Thousands(e.Max) + " " + unit
	return fmt.Sprintf("rate limit %s for %s %s: %s per %s, retry in %s",
		e.Limit, e.Scope, e.Key, what, textfmt.Duration(e.Per), textfmt.Duration(e.RetryAfter))
}

// ErrLimiterFull is returned by Allow when the Limiter keeps MaxKeys
// counters, none idle, and the call needs a new one.
var ErrLimiterFull = errors.New("rate limiter is tracking as many counters as it may; refusing new ones until some go idle")

// Len is how many counters the limiter keeps in memory.
func (l *Limiter) Len() int { return l.memory().len() }

// store is where the counters are.
func (l *Limiter) store() RateStore {
	if l.Store != nil {
		return l.Store
	}
	return l.memory()
}

func (l *Limiter) memory() *MemoryRates {
	l.once.Do(func() { l.mem.MaxKeys = l.MaxKeys })
	return &l.mem
}

// limitOf is one rate limit that applies to a call, with its key.
type limitOf struct {
	rl  *policy.RateLimit
	key RateKey
}

func applicable(pol *policy.Policy, p policy.Principal, action string) ([]limitOf, error) {
	if pol == nil {
		return nil, errors.New("rate limit: no policy")
	}
	req := &policy.Request{Principal: p, Action: action}
	var out []limitOf
	for i := range pol.RateLimits {
		rl := &pol.RateLimits[i]
		if !rl.AppliesTo(req) {
			continue
		}
		v, err := scopeValue(rl.Scope, p)
		if err != nil {
			return nil, fmt.Errorf("rate limit %s: %w", rl.ID, err)
		}
		out = append(out, limitOf{rl: rl, key: RateKey{Limit: rl.ID, Scope: v}})
	}
	return out, nil
}

// Allow counts a call of action by p against every rate limit of pol that
// applies, at now, and allows it only if every one has room: else the
// error is a *Limited for the first that has none, and nothing is
// counted. Other errors (no policy, a principal lacking the scope a limit
// counts by, ErrLimiterFull, a store that cannot be reached) refuse the
// call too.
func (l *Limiter) Allow(ctx context.Context, pol *policy.Policy, p policy.Principal, action string, now time.Time) error {
	lims, err := applicable(pol, p, action)
	if err != nil || len(lims) == 0 {
		return err
	}
	return l.store().Update(ctx, keysOf(lims), now, true, func(bs []Bucket) error {
		for i, lim := range lims {
			b := &bs[i]
			refill(b, lim.rl, now)
			if lim.rl.Requests > 0 && b.Reqs < 1 {
				return limited(lim, false, b.Reqs)
			}
			if lim.rl.Tokens > 0 && b.Toks < 1 {
				return limited(lim, true, b.Toks)
			}
		}
		for i, lim := range lims {
			if lim.rl.Requests > 0 {
				bs[i].Reqs--
				setFull(&bs[i], lim.rl)
			}
		}
		return nil
	})
}

// AddTokens counts n tokens used by a call of action by p against every
// token limit of pol that applies. It never refuses: a call that used up a
// limit is refused by the next Allow. It records the tokens even past
// MaxKeys, which calls in flight exceed by at most their number. Its error
// says that the tokens could not be counted.
func (l *Limiter) AddTokens(ctx context.Context, pol *policy.Policy, p policy.Principal, action string, n int64, now time.Time) error {
	if n <= 0 {
		return nil
	}
	lims, err := applicable(pol, p, action)
	if err != nil {
		return nil // Allow refused the call for the same reason
	}
	lims = slices.DeleteFunc(lims, func(lim limitOf) bool { return lim.rl.Tokens == 0 })
	if len(lims) == 0 {
		return nil
	}
	return l.store().Update(ctx, keysOf(lims), now, false, func(bs []Bucket) error {
		for i, lim := range lims {
			refill(&bs[i], lim.rl, now)
			bs[i].Toks -= float64(n)
			setFull(&bs[i], lim.rl)
		}
		return nil
	})
}

func keysOf(lims []limitOf) []RateKey {
	keys := make([]RateKey, len(lims))
	for i, lim := range lims {
		keys[i] = lim.key
	}
	return keys
}

// refill brings b up to now: a fresh bucket full, another refilled at the
// limit's rates, and clamped, also after a policy change lowered it.
func refill(b *Bucket, rl *policy.RateLimit, now time.Time) {
	if b.At.IsZero() {
		*b = Bucket{Reqs: reqCap(rl), Toks: float64(rl.Tokens), At: now, Full: now}
		return
	}
	if dt := now.Sub(b.At); dt > 0 {
		per := float64(rl.Per)
		b.Reqs += float64(dt) * float64(rl.Requests) / per
		b.Toks += float64(dt) * float64(rl.Tokens) / per
		b.At = now
	}
	b.Reqs = math.Min(b.Reqs, reqCap(rl))
	b.Toks = math.Min(b.Toks, float64(rl.Tokens))
}

// reqCap is what a request bucket holds: requests and burst.
func reqCap(rl *policy.RateLimit) float64 { return float64(rl.Requests + rl.Burst) }

// setFull records when b, as it is now, is back at full for rl.
func setFull(b *Bucket, rl *policy.RateLimit) {
	var wait float64
	if rl.Requests > 0 {
		wait = (reqCap(rl) - b.Reqs) / float64(rl.Requests)
	}
	if rl.Tokens > 0 {
		wait = math.Max(wait, (float64(rl.Tokens)-b.Toks)/float64(rl.Tokens))
	}
	full := b.At.Add(time.Duration(math.Ceil(wait * float64(rl.Per))))
	if full.After(b.Full) {
		b.Full = full
	}
}

// limited is the refusal by lim, whose bucket (of tokens or requests) has
// left below one.
func limited(lim limitOf, tokens bool, left float64) *Limited {
	rl := lim.rl
	rate := float64(rl.Requests)
	maxN := int64(rl.Requests)
	if tokens {
		rate, maxN = float64(rl.Tokens), rl.Tokens
	}
	wait := time.Duration(math.Ceil((1 - left) / rate * float64(rl.Per)))
	wait = max((wait+time.Second-1)/time.Second*time.Second, time.Second)
	return &Limited{
		Limit: rl.ID, Scope: rl.Scope, Key: lim.key.Scope, Tokens: tokens, Max: maxN, Per: rl.Per, RetryAfter: wait,
	}
}
