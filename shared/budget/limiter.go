package budget

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/textfmt"
)

// DefaultMaxKeys is how many (rate limit, scope value) counters a Limiter
// keeps at most unless told otherwise.
const DefaultMaxKeys = 100_000

// Limiter enforces the policy's rate limits in memory, for one server.
// Each (rate limit ID, scope value) has a token bucket per dimension:
//
//   - requests: holds requests + burst, refills at requests per window,
//     and each allowed call takes one. Over any long stretch the rate is
//     requests per window; a quiet key may spend its burst at once.
//   - tokens: holds tokens, refills at tokens per window, and AddTokens
//     takes the tokens a call used, into debt if need be. A call is
//     refused while less than one token is left, until the refill pays
//     the debt back.
//
// Memory is bounded: a counter back at full is forgotten (it holds nothing
// a fresh one would not), and once MaxKeys counters are in use a new key
// is refused, failing closed, until some go idle.
//
// The zero value is ready; methods are safe for concurrent use.
type Limiter struct {
	// MaxKeys caps the counters kept; 0 means DefaultMaxKeys.
	MaxKeys int

	mu      sync.Mutex
	keys    map[limitKey]*bucket
	sweepAt int // sweep idle counters when this many are kept
}

type limitKey struct {
	limit string // rate limit ID
	scope string // scope value
}

// bucket is one counter. reqs and toks are what was left at at.
type bucket struct {
	reqs, toks float64
	at         time.Time
	full       time.Time // when both are back at full, unless used again
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

// Len is how many counters the limiter keeps.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// limitOf is one rate limit that applies to a call, with its key.
type limitOf struct {
	rl  *policy.RateLimit
	key limitKey
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
		out = append(out, limitOf{rl: rl, key: limitKey{limit: rl.ID, scope: v}})
	}
	return out, nil
}

// Allow counts a call of action by p against every rate limit of pol that
// applies, at now, and allows it only if every one has room: else the
// error is a *Limited for the first that has none, and nothing is
// counted. Other errors (no policy, a principal lacking the scope a limit
// counts by, ErrLimiterFull) refuse the call too.
func (l *Limiter) Allow(pol *policy.Policy, p policy.Principal, action string, now time.Time) error {
	lims, err := applicable(pol, p, action)
	if err != nil {
		return err
	}
	if len(lims) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.makeRoom(lims, now, true); err != nil {
		return err
	}
	bs := make([]*bucket, len(lims))
	for i, lim := range lims {
		b := l.bucket(lim, now)
		bs[i] = b
		if lim.rl.Requests > 0 && b.reqs < 1 {
			return limited(lim, false, b.reqs)
		}
		if lim.rl.Tokens > 0 && b.toks < 1 {
			return limited(lim, true, b.toks)
		}
	}
	for i, lim := range lims {
		if lim.rl.Requests > 0 {
			bs[i].reqs--
			bs[i].setFull(lim.rl)
		}
	}
	return nil
}

// AddTokens counts n tokens used by a call of action by p against every
// token limit of pol that applies. It never refuses: a call that used up a
// limit is refused by the next Allow. It records the tokens even past
// MaxKeys, which calls in flight exceed by at most their number.
func (l *Limiter) AddTokens(pol *policy.Policy, p policy.Principal, action string, n int64, now time.Time) {
	if n <= 0 {
		return
	}
	lims, err := applicable(pol, p, action)
	if err != nil {
		return // Allow refused the call for the same reason
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.makeRoom(lims, now, false)
	for _, lim := range lims {
		if lim.rl.Tokens == 0 {
			continue
		}
		b := l.bucket(lim, now)
		b.toks -= float64(n)
		b.setFull(lim.rl)
	}
}

// makeRoom forgets idle counters when there are many, before any of the
// call's counters is looked up, so that none it uses is dropped midway.
// With strict, it refuses the call if its new counters would take the
// limiter past MaxKeys. It holds l.mu.
func (l *Limiter) makeRoom(lims []limitOf, now time.Time, strict bool) error {
	if l.keys == nil {
		l.keys = map[limitKey]*bucket{}
	}
	added := 0
	for _, lim := range lims {
		if _, ok := l.keys[lim.key]; !ok {
			added++
		}
	}
	maxKeys := l.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if added == 0 || len(l.keys)+added < max(l.sweepAt, 1024) && len(l.keys)+added <= maxKeys {
		return nil
	}
	for k, b := range l.keys {
		if !b.full.After(now) {
			delete(l.keys, k)
		}
	}
	l.sweepAt = 2 * len(l.keys)
	if strict {
		added = 0
		for _, lim := range lims {
			if _, ok := l.keys[lim.key]; !ok {
				added++
			}
		}
		if len(l.keys)+added > maxKeys {
			return ErrLimiterFull
		}
	}
	return nil
}

// bucket returns the key's counter refilled up to now, making a full one
// for a new key. It holds l.mu.
func (l *Limiter) bucket(lim limitOf, now time.Time) *bucket {
	rl := lim.rl
	b, ok := l.keys[lim.key]
	if !ok {
		b = &bucket{reqs: reqCap(rl), toks: float64(rl.Tokens), at: now, full: now}
		l.keys[lim.key] = b
		return b
	}
	if dt := now.Sub(b.at); dt > 0 {
		per := float64(rl.Per)
		b.reqs += float64(dt) * float64(rl.Requests) / per
		b.toks += float64(dt) * float64(rl.Tokens) / per
		b.at = now
	}
	// Clamp also after a policy change lowered the limit.
	b.reqs = math.Min(b.reqs, reqCap(rl))
	b.toks = math.Min(b.toks, float64(rl.Tokens))
	return b
}

// reqCap is what a request bucket holds: requests and burst.
func reqCap(rl *policy.RateLimit) float64 { return float64(rl.Requests + rl.Burst) }

// setFull records when b, as it is now, is back at full for rl.
func (b *bucket) setFull(rl *policy.RateLimit) {
	var wait float64
	if rl.Requests > 0 {
		wait = (reqCap(rl) - b.reqs) / float64(rl.Requests)
	}
	if rl.Tokens > 0 {
		wait = math.Max(wait, (float64(rl.Tokens)-b.toks)/float64(rl.Tokens))
	}
	full := b.at.Add(time.Duration(math.Ceil(wait * float64(rl.Per))))
	if full.After(b.full) {
		b.full = full
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
		Limit: rl.ID, Scope: rl.Scope, Key: lim.key.scope, Tokens: tokens, Max: maxN, Per: rl.Per, RetryAfter: wait,
	}
}
