package pricing

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func mustLookup(t *testing.T, provider, model string) Price {
	t.Helper()
	p, ok := Default().Lookup(provider, model)
	if !ok {
		t.Fatalf("Lookup(%q, %q): unknown", provider, model)
	}
	return p
}

func TestCost(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name            string
		provider, model string
		tokens          Tokens
		want            Money
	}{
		{
			// A Claude Code turn deep in a session: the system prompt and tools
			// read from the 1 h cache, the last turns written to both caches.
			name: "claude code turn, sonnet 4.5", provider: Anthropic, model: "claude-sonnet-4-5-20250929",
			tokens: Tokens{Input: 3, CacheRead: 45_000, CacheWrite5m: 1_200, CacheWrite1h: 18_000, Output: 850},
			// 3*3000 + 45000*300 + 1200*3750 + 18000*6000 + 850*15000 nano-dollars
			want: 9_000 + 13_500_000 + 4_500_000 + 108_000_000 + 12_750_000,
		},
		{
			name: "claude code turn, opus 4.5 by alias", provider: Anthropic, model: "claude-opus-4-5",
			tokens: Tokens{Input: 12, CacheRead: 61_234, CacheWrite5m: 2_048, Output: 1_337},
			// 12*5000 + 61234*500 + 2048*6250 + 1337*25000
			want: 60_000 + 30_617_000 + 12_800_000 + 33_425_000,
		},
		{
			name: "claude code title call, haiku 4.5", provider: Anthropic, model: "claude-haiku-4-5-20251001",
			tokens: Tokens{Input: 417, Output: 12},
			want:   417*1000 + 12*5000,
		},
		{
			// Codex: input_tokens 24000 of which cached 20480; output 1500 of which
			// reasoning 1024. Input is the uncached part; reasoning is inside Output.
			name: "codex turn, gpt-5-codex", provider: OpenAI, model: "gpt-5-codex",
			tokens: Tokens{Input: 24_000 - 20_480, CacheRead: 20_480, Output: 1_500, Reasoning: 1_024},
			want:   3_520*1250 + 20_480*125 + 1_500*10_000,
		},
		{
			name: "codex turn, gpt-5.1-codex-mini", provider: OpenAI, model: "gpt-5.1-codex-mini",
			tokens: Tokens{Input: 1_111, CacheRead: 9_984, Output: 333, Reasoning: 256},
			// 1111*250 + 9984*25 + 333*2000
			want: 277_750 + 249_600 + 666_000,
		},
		{
			// $0.005 per million is 5 nano-dollars a token.
			name: "smallest default price", provider: OpenAI, model: "gpt-5-nano",
			tokens: Tokens{CacheRead: 200, Input: 1},
			want:   200*5 + 1*50,
		},
		{
			name: "prompt of exactly 200K: standard rates", provider: Anthropic, model: "claude-sonnet-4-5",
			tokens: Tokens{Input: 100_000, CacheRead: 100_000, Output: 1_000},
			want:   100_000*3000 + 100_000*300 + 1_000*15_000,
		},
		{
			name: "prompt over 200K: long-context rates for all", provider: Anthropic, model: "claude-sonnet-4-5",
			tokens: Tokens{Input: 100_001, CacheRead: 100_000, Output: 1_000},
			want:   100_001*6000 + 100_000*600 + 1_000*22_500,
		},
		{
			name: "bedrock regional: 10% more", provider: Bedrock, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
			tokens: Tokens{Input: 1_000, CacheWrite5m: 1_000, Output: 1_000},
			want:   1_000*3300 + 1_000*4125 + 1_000*16_500,
		},
		{
			name: "bedrock global: list price", provider: Bedrock, model: "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
			tokens: Tokens{Input: 1_000, CacheWrite5m: 1_000, Output: 1_000},
			want:   1_000*3000 + 1_000*3750 + 1_000*15_000,
		},
		{
			name: "negative counts count as zero", provider: Anthropic, model: "claude-haiku-4-5",
			tokens: Tokens{Input: -5, Output: 10, CacheRead: math.MinInt64},
			want:   10 * 5000,
		},
		{
			name: "overflow saturates", provider: OpenAI, model: "o1-pro",
			tokens: Tokens{Input: math.MaxInt64, Output: math.MaxInt64, CacheRead: math.MaxInt64},
			want:   math.MaxInt64,
		},
		{
			name: "large but in range", provider: Anthropic, model: "claude-opus-4-1",
			tokens: Tokens{Output: 100_000_000_000}, // 1e11 tokens at $75/M = $7.5M
			want:   7_500_000 * Dollar,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustLookup(t, tt.provider, tt.model)
			if got := p.Cost(tt.tokens); got != tt.want {
				t.Errorf("Cost(%+v) = %d (%s), want %d (%s)", tt.tokens, got, got, tt.want, tt.want)
			}
		})
	}
}

func TestCostRoundsUp(t *testing.T) {
	t.Parallel()
	// $0.0000005 per million tokens: 0.0005 nano-dollars a token.
	p := Price{Input: 500, Output: 1_500}
	for _, tt := range []struct {
		tokens Tokens
		want   Money
	}{
		{Tokens{}, 0},
		{Tokens{Input: 1}, 1},
		{Tokens{Input: 2_000}, 1},
		{Tokens{Input: 2_001}, 2},
		{Tokens{Input: 1_000, Output: 1_000}, 2}, // 0.5 + 1.5, rounded once after summing
		{Tokens{Input: 1, Output: 1}, 1},
	} {
		if got := p.Cost(tt.tokens); got != tt.want {
			t.Errorf("Cost(%+v) = %d, want %d", tt.tokens, got, tt.want)
		}
	}
}

// refCost is Cost computed with big integers.
func refCost(p Price, tk Tokens) *big.Int {
	r := p.Rates(tk.Prompt())
	sum := new(big.Int)
	for _, kv := range [][2]int64{
		{tk.Input, int64(r.Input)}, {tk.Output, int64(r.Output)}, {tk.CacheRead, int64(r.CacheRead)},
		{tk.CacheWrite5m, int64(r.CacheWrite5m)}, {tk.CacheWrite1h, int64(r.CacheWrite1h)},
	} {
		sum.Add(sum, new(big.Int).Mul(big.NewInt(max(kv[0], 0)), big.NewInt(max(kv[1], 0))))
	}
	q, m := new(big.Int).QuoRem(sum, big.NewInt(1_000_000), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

func TestCostMatchesBigInt(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	maxMoney := big.NewInt(math.MaxInt64)
	count := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return rng.Int64N(1_000_000)
		case 1:
			return rng.Int64N(1 << 40)
		case 2:
			return rng.Int64()
		default:
			return 0
		}
	}
	price := func() Money { return Money(rng.Int64N(MaxPrice*int64(Dollar) + 1)) }
	for range 20_000 {
		p := Price{Input: price(), Output: price(), CacheWrite5m: price(), CacheWrite1h: price(), CacheRead: price()}
		if rng.IntN(2) == 0 {
			p.LongContext = &LongContext{Above: rng.Int64N(1 << 20), Rates: Rates{Input: price(), Output: price(), CacheWrite5m: price(), CacheWrite1h: price(), CacheRead: price()}}
		}
		tk := Tokens{Input: count(), Output: count(), CacheRead: count(), CacheWrite5m: count(), CacheWrite1h: count()}
		want := refCost(p, tk)
		if want.Cmp(maxMoney) > 0 {
			want = maxMoney
		}
		if got := p.Cost(tk); big.NewInt(int64(got)).Cmp(want) != 0 {
			t.Fatalf("Cost(%+v) at %+v = %d, want %s", tk, p, got, want)
		}
	}
}

func TestWorstCase(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name            string
		provider, model string
		input, output   int64
		want            Money
	}{
		// Every prompt token at the 1 h cache-write price, the highest input-side one.
		{"sonnet 4.5", Anthropic, "claude-sonnet-4-5", 100_000, 32_000, 100_000*6000 + 32_000*15_000},
		{"sonnet 4.5, long context possible", Anthropic, "claude-sonnet-4-5", 500_000, 64_000, 500_000*12_000 + 64_000*22_500},
		// No cache-write price: a cache write costs the input price.
		{"gpt-5", OpenAI, "gpt-5", 100_000, 16_000, 100_000*1250 + 16_000*10_000},
		{"bedrock regional", Bedrock, "eu.anthropic.claude-haiku-4-5-20251001-v1:0", 10_000, 1_000, 10_000*2200 + 1_000*5500},
		{"saturates", OpenAI, "o1-pro", math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{"nothing", Anthropic, "claude-opus-4-6", 0, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustLookup(t, tt.provider, tt.model)
			if got := p.WorstCase(tt.input, tt.output); got != tt.want {
				t.Errorf("WorstCase(%d, %d) = %d, want %d", tt.input, tt.output, got, tt.want)
			}
		})
	}
}

// TestWorstCaseBounds checks that no usage within the bounds costs more
// than WorstCase, for every default price.
func TestWorstCaseBounds(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	tb := Default()
	for _, provider := range providers {
		for _, model := range tb.Models(provider) {
			p, _ := tb.Lookup(provider, model)
			for range 200 {
				in, out := rng.Int64N(1_000_000), rng.Int64N(200_000)
				tk := Tokens{Output: out}
				left := in
				for _, f := range []*int64{&tk.Input, &tk.CacheRead, &tk.CacheWrite5m, &tk.CacheWrite1h} {
					*f = rng.Int64N(left + 1)
					left -= *f
				}
				if c, w := p.Cost(tk), p.WorstCase(in, out); c > w {
					t.Fatalf("%s %s: Cost(%+v) = %d > WorstCase(%d, %d) = %d", provider, model, tk, c, in, out, w)
				}
			}
		}
	}
}

func TestPrompt(t *testing.T) {
	t.Parallel()
	if got := (Tokens{Input: 1, CacheRead: 2, CacheWrite5m: 3, CacheWrite1h: 4, Output: 100}).Prompt(); got != 10 {
		t.Errorf("Prompt = %d, want 10", got)
	}
	if got := (Tokens{Input: math.MaxInt64, CacheRead: 5, CacheWrite5m: -3}).Prompt(); got != math.MaxInt64 {
		t.Errorf("Prompt = %d, want saturation", got)
	}
}

func BenchmarkCost(b *testing.B) {
	p := mustLookup(&testing.T{}, Anthropic, "claude-sonnet-4-5")
	tk := Tokens{Input: 3, CacheRead: 45_000, CacheWrite5m: 1_200, CacheWrite1h: 18_000, Output: 850}
	for b.Loop() {
		_ = p.Cost(tk)
	}
}
