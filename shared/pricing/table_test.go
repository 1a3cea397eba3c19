package pricing

import (
	"slices"
	"testing"
)

// TestDefault checks the embedded file: it loads, and every entry keeps
// its provider's price structure, so that a typo in a price fails here.
func TestDefault(t *testing.T) {
	t.Parallel()
	tb, err := Load("prices.yaml", defaultFile)
	if err != nil {
		t.Fatalf("prices.yaml does not load:\n%v", err)
	}
	for _, provider := range providers {
		models := tb.Models(provider)
		if len(models) < 8 {
			t.Errorf("%s: %d models, want at least 8", provider, len(models))
		}
		for _, m := range models {
			p, ok := tb.Lookup(provider, m)
			if !ok {
				t.Fatalf("%s %s: listed but not found", provider, m)
			}
			checkShape(t, provider, m, p.Rates(0))
			if p.LongContext != nil {
				checkShape(t, provider, m+" long context", p.LongContext.Rates)
				if p.LongContext.Above != 200_000 {
					t.Errorf("%s %s: long context above %d", provider, m, p.LongContext.Above)
				}
			}
		}
	}
}

// checkShape holds the providers' published rules between prices:
// Anthropic's 5 m cache write is 1.25 x input, 1 h is 2 x, a cache read
// 0.1 x; OpenAI's cache writes are the input price and reads are cheaper.
func checkShape(t *testing.T, provider, model string, r Rates) {
	t.Helper()
	if r.Input <= 0 || r.Output < r.Input {
		t.Errorf("%s %s: input %s, output %s", provider, model, r.Input, r.Output)
	}
	switch provider {
	case OpenAI:
		if r.CacheWrite5m != r.Input || r.CacheWrite1h != r.Input || r.CacheRead > r.Input {
			t.Errorf("%s %s: cache prices %+v do not follow the input price", provider, model, r)
		}
	default:
		if model == "claude-3-haiku-20240307" {
			return // published before the rule: 0.30, 0.50 and 0.03 on 0.25
		}
		if r.CacheWrite5m*4 != r.Input*5 || r.CacheWrite1h != 2*r.Input || r.CacheRead*10 != r.Input {
			t.Errorf("%s %s: cache prices %+v are not 1.25x, 2x and 0.1x input", provider, model, r)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	tb := Default()
	for _, tt := range []struct {
		provider, name string
		model          string // the entry found; "" for unknown
		input          Money  // its input price
	}{
		{Anthropic, "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", USD(3)},
		{Anthropic, "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", USD(3)},
		{Anthropic, "claude-opus-4-5", "claude-opus-4-5-20251101", USD(5)},
		{Anthropic, "claude-opus-4-1", "claude-opus-4-1-20250805", USD(15)},
		{Anthropic, "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", USD(1)},
		{Anthropic, "claude-opus-4-6", "claude-opus-4-6", USD(5)},
		{Anthropic, "claude-sonnet-4-5-20250929 ", "", 0},
		{Anthropic, "Claude-Sonnet-4-5", "", 0},
		{Anthropic, "claude-opus-9", "", 0},
		{Anthropic, "gpt-5", "", 0},
		{Anthropic, "", "", 0},
		{OpenAI, "gpt-5-codex", "gpt-5-codex", USD(1.25)},
		{OpenAI, "gpt-5-2025-08-07", "gpt-5", USD(1.25)},
		{OpenAI, "gpt-5.1-codex-max", "gpt-5.1-codex-max", USD(1.25)},
		{OpenAI, "gpt-4.1-nano-2025-04-14", "gpt-4.1-nano", USD(0.10)},
		{OpenAI, "o4-mini", "o4-mini", USD(1.10)},
		{OpenAI, "gpt-4o-2024-05-13", "", 0}, // priced differently; not an alias
		{OpenAI, "gpt-5-2099-01-01", "", 0},
		{"azure", "gpt-5", "", 0},
		{"", "gpt-5", "", 0},
		// Bedrock: listed price is the global profile's; all else pays 10% more where set.
		{Bedrock, "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", USD(3)},
		{Bedrock, "anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", USD(3.30)},
		{Bedrock, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", USD(3.30)},
		{Bedrock, "eu.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0", USD(1.10)},
		{Bedrock, "apac.anthropic.claude-opus-4-5-20251101-v1:0", "anthropic.claude-opus-4-5-20251101-v1:0", USD(5.50)},
		{Bedrock, "jp.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0", USD(1.10)},
		{Bedrock, "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", USD(3.30)},
		{Bedrock, "us.anthropic.claude-opus-4-1-20250805-v1:0", "anthropic.claude-opus-4-1-20250805-v1:0", USD(15)},
		{Bedrock, "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", USD(3.30)},
		{Bedrock, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", USD(3.30)},
		{Bedrock, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", USD(3)},
		{Bedrock, "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3", "", 0},
		{Bedrock, "arn:aws:s3:::bucket/anthropic.claude-sonnet-4-5-20250929-v1:0", "", 0},
		{Bedrock, "xx.anthropic.claude-sonnet-4-5-20250929-v1:0", "", 0},
		{Bedrock, "us.us.anthropic.claude-sonnet-4-5-20250929-v1:0", "", 0},
		{Bedrock, "anthropic.claude-sonnet-4-5-20250929-v2:0", "", 0},
		{Bedrock, "claude-sonnet-4-5-20250929", "", 0},
	} {
		p, ok := tb.Lookup(tt.provider, tt.name)
		if ok != (tt.model != "") || p.Model != tt.model || p.Input != tt.input {
			t.Errorf("Lookup(%q, %q) = %q input %s, %v; want %q input %s", tt.provider, tt.name, p.Model, p.Input, ok, tt.model, tt.input)
		}
		if ok && p.Provider != tt.provider {
			t.Errorf("Lookup(%q, %q).Provider = %q", tt.provider, tt.name, p.Provider)
		}
	}
	var nilTable *Table
	if _, ok := nilTable.Lookup(Anthropic, "claude-sonnet-4-5"); ok {
		t.Error("nil table knows a model")
	}
}

func TestBedrockPremiumRoundsUp(t *testing.T) {
	t.Parallel()
	p := withPremium(Price{Input: 1, Output: 15, CacheRead: 10}, 10)
	if p.Input != 2 || p.Output != 17 || p.CacheRead != 11 {
		t.Errorf("withPremium = %+v, want 2, 17, 11", p)
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	over, err := Load("ops.yaml", []byte(`version: 1
anthropic:
  claude-sonnet-4-5-20250929:   # negotiated; inherits the alias claude-sonnet-4-5
    input: 2.70
    output: 13.50
    cache_write_5m: 3.375
    cache_write_1h: 5.40
    cache_read: 0.27
  claude-opus-4-5:              # was an alias; now its own entry
    aliases: [opus-house]
    input: 4
    output: 20
    cache_write_5m: 5
    cache_write_1h: 8
    cache_read: 0.40
openai:
  gpt-6-codex:
    input: 2
    cache_read: 0.20
    output: 16
`))
	if err != nil {
		t.Fatal(err)
	}
	base := Default()
	merged := base.Merge(over)
	for _, tt := range []struct {
		provider, name string
		model          string
		input          Money
	}{
		{Anthropic, "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", USD(2.70)},
		{Anthropic, "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", USD(2.70)},
		{Anthropic, "claude-opus-4-5", "claude-opus-4-5", USD(4)},
		{Anthropic, "opus-house", "claude-opus-4-5", USD(4)},
		{Anthropic, "claude-opus-4-5-20251101", "claude-opus-4-5-20251101", USD(5)},
		{Anthropic, "claude-haiku-4-5", "claude-haiku-4-5-20251001", USD(1)},
		{OpenAI, "gpt-6-codex", "gpt-6-codex", USD(2)},
		{OpenAI, "gpt-5", "gpt-5", USD(1.25)},
		{Bedrock, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", USD(3.30)},
	} {
		p, ok := merged.Lookup(tt.provider, tt.name)
		if !ok || p.Model != tt.model || p.Input != tt.input {
			t.Errorf("merged Lookup(%q, %q) = %q input %s, %v; want %q input %s", tt.provider, tt.name, p.Model, p.Input, ok, tt.model, tt.input)
		}
	}
	if p, _ := base.Lookup(Anthropic, "claude-sonnet-4-5"); p.Input != USD(3) {
		t.Errorf("Merge changed the base table: %s", p.Input)
	}
	if _, ok := base.Lookup(OpenAI, "gpt-6-codex"); ok {
		t.Error("Merge added to the base table")
	}
	if got, want := len(merged.Models(Anthropic)), len(base.Models(Anthropic))+1; got != want {
		t.Errorf("merged anthropic names = %d, want %d", got, want)
	}
	// Merging again over the result keeps the inherited alias.
	again := merged.Merge(over)
	if p, _ := again.Lookup(Anthropic, "claude-sonnet-4-5"); p.Input != USD(2.70) {
		t.Errorf("second merge: claude-sonnet-4-5 input %s", p.Input)
	}
	if !slices.Equal(base.Merge(nil).Models(OpenAI), base.Models(OpenAI)) {
		t.Error("Merge(nil) is not a copy")
	}
	if _, ok := (*Table)(nil).Merge(over).Lookup(OpenAI, "gpt-6-codex"); !ok {
		t.Error("nil.Merge(over) lacks over")
	}
}
