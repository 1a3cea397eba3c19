package pricing

import (
	"math"
	"math/bits"
)

// Tokens is what one model call consumed, in one convention for every
// provider. The four input fields are disjoint: together they are the
// whole prompt, and each is priced by its own rate.
//
//   - Input is the prompt tokens neither read from nor written to a cache.
//     This is Anthropic's input_tokens as reported. OpenAI's input_tokens
//     (prompt_tokens) includes its cached tokens: Input is that count
//     minus cached_tokens.
//   - CacheRead is the prompt tokens read from a cache: Anthropic's
//     cache_read_input_tokens, OpenAI's cached_tokens.
//   - CacheWrite5m and CacheWrite1h are the prompt tokens written to a
//     cache with a 5-minute or 1-hour lifetime (Anthropic's
//     cache_creation.ephemeral_5m/1h_input_tokens). OpenAI reports no cache
//     writes; they are part of Input there.
//   - Output is every generated token, reasoning included: Anthropic's
//     output_tokens (which counts thinking), OpenAI's output_tokens
//     (completion_tokens), which includes reasoning tokens.
//   - Reasoning is the part of Output spent on reasoning, as OpenAI
//     reports it (Anthropic does not); it is informational and not priced
//     separately, since Output already holds it.
type Tokens struct {
	Input        int64 `json:"input"`
	Output       int64 `json:"output"`
	CacheRead    int64 `json:"cache_read,omitempty"`
	CacheWrite5m int64 `json:"cache_write_5m,omitempty"`
	CacheWrite1h int64 `json:"cache_write_1h,omitempty"`
	Reasoning    int64 `json:"reasoning,omitempty"`
}

// Prompt is the whole prompt of the call: Input plus cache reads and
// writes. Long-context prices apply by this count. It saturates at the
// largest int64 rather than overflow.
func (t Tokens) Prompt() int64 {
	return satAdd(satAdd(nonNeg(t.Input), nonNeg(t.CacheRead)), satAdd(nonNeg(t.CacheWrite5m), nonNeg(t.CacheWrite1h)))
}

// Rates are prices per million tokens of each kind.
type Rates struct {
	Input        Money
	Output       Money
	CacheWrite5m Money
	CacheWrite1h Money
	CacheRead    Money
}

// LongContext is a second set of rates for calls with a long prompt.
type LongContext struct {
	// Above is the prompt size (Tokens.Prompt) from which on the rates
	// apply: a call whose prompt has more than Above tokens pays Rates for
	// all its tokens, output included.
	Above int64
	Rates
}

// Price is what one model costs, per million tokens of each kind.
type Price struct {
	Provider string
	// Model is the ID of the table entry, whichever name found it.
	Model        string
	Input        Money
	Output       Money
	CacheWrite5m Money
	CacheWrite1h Money
	CacheRead    Money
	// LongContext, when not nil, replaces the rates above for a call whose
	// prompt is longer than LongContext.Above.
	LongContext *LongContext
}

// Rates returns the rates that apply to a call with a prompt of prompt
// tokens.
func (p Price) Rates(prompt int64) Rates {
	if lc := p.LongContext; lc != nil && prompt > lc.Above {
		return lc.Rates
	}
	return Rates{Input: p.Input, Output: p.Output, CacheWrite5m: p.CacheWrite5m, CacheWrite1h: p.CacheWrite1h, CacheRead: p.CacheRead}
}

// perMillion is the token count prices are given for.
const perMillion = 1_000_000

// Cost is what a call with usage t costs at p: each kind of token times
// its rate, summed exactly, then divided by a million and rounded up to
// the next nano-dollar. Negative counts or rates count as zero. A cost
// beyond the range of Money (about $9.2 billion) is reported as the
// largest Money, which no budget admits.
func (p Price) Cost(t Tokens) Money {
	r := p.Rates(t.Prompt())
	var s sum128
	s.add(t.Input, r.Input)
	s.add(t.Output, r.Output)
	s.add(t.CacheRead, r.CacheRead)
	s.add(t.CacheWrite5m, r.CacheWrite5m)
	s.add(t.CacheWrite1h, r.CacheWrite1h)
	return s.perMillionCeil()
}

// WorstCase is the most a call can cost whose prompt has at most
// inputUpperBound tokens and which generates at most maxOutput: every
// prompt token at the highest input-side rate (a call may write its whole
// prompt to the 1-hour cache), every output token at the output rate, and
// the long-context rates where the bound allows a long prompt. For any
// usage t within the bounds, p.Cost(t) <= p.WorstCase(bounds). Budgets
// reserve it before a call and settle with Cost after.
func (p Price) WorstCase(inputUpperBound, maxOutput int64) Money {
	r := p.Rates(0)
	if lc := p.LongContext; lc != nil && inputUpperBound > lc.Above {
		l := lc.Rates
		r = Rates{
			Input: max(r.Input, l.Input), Output: max(r.Output, l.Output),
			CacheWrite5m: max(r.CacheWrite5m, l.CacheWrite5m), CacheWrite1h: max(r.CacheWrite1h, l.CacheWrite1h),
			CacheRead: max(r.CacheRead, l.CacheRead),
		}
	}
	var s sum128
	s.add(inputUpperBound, max(r.Input, r.CacheWrite5m, r.CacheWrite1h, r.CacheRead))
	s.add(maxOutput, r.Output)
	return s.perMillionCeil()
}

// sum128 is an unsigned 128-bit accumulator; over marks a sum past 2^128.
type sum128 struct {
	hi, lo uint64
	over   bool
}

func (s *sum128) add(n int64, rate Money) {
	if n <= 0 || rate <= 0 {
		return
	}
	hi, lo := bits.Mul64(uint64(n), uint64(rate))
	var c uint64
	s.lo, c = bits.Add64(s.lo, lo, 0)
	s.hi, c = bits.Add64(s.hi, hi, c)
	if c != 0 {
		s.over = true
	}
}

// perMillionCeil is ceil(s / 1e6) as Money, saturated at the largest Money.
func (s *sum128) perMillionCeil() Money {
	if s.over || s.hi >= perMillion { // the quotient would not fit 64 bits
		return math.MaxInt64
	}
	q, rem := bits.Div64(s.hi, s.lo, perMillion)
	if q >= math.MaxInt64 {
		return math.MaxInt64
	}
	if rem != 0 {
		q++
	}
	return Money(q)
}

func nonNeg(n int64) int64 { return max(n, 0) }

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
