package pricing

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		file string
		want string
	}{
		{
			name: "unknown key with a suggestion",
			file: `version: 1
anthropic:
  claude-x:
    input: 3
    ouput: 15
    cache_write_5m: 3.75
    cache_write_1h: 6
    cache_read: 0.30
`,
			want: `ops.yaml:3:3: model "claude-x" is missing output
ops.yaml:5:5: unknown key "ouput" in model "claude-x" (did you mean "output"?); allowed: aliases, input, output, cache_write_5m, cache_write_1h, cache_read, long_context`,
		},
		{
			name: "duplicate model",
			file: `version: 1
openai:
  gpt-x: {input: 1, cache_read: 0.1, output: 4}
  gpt-x: {input: 1, cache_read: 0.1, output: 4}
`,
			want: `ops.yaml:4:3: "gpt-x" is given twice (first at line 3)`,
		},
		{
			name: "alias used twice",
			file: `version: 1
openai:
  gpt-x: {aliases: [gpt-y], input: 1, cache_read: 0.1, output: 4}
  gpt-y: {input: 1, cache_read: 0.1, output: 4}
  gpt-z: {aliases: [gpt-z, gpt-x], input: 1, cache_read: 0.1, output: 4}
`,
			want: `ops.yaml:4:3: model name "gpt-y" is already given at line 3
ops.yaml:5:21: model name "gpt-z" is already given at line 5
ops.yaml:5:28: model name "gpt-x" is already given at line 3`,
		},
		{
			name: "duplicate field",
			file: `version: 1
openai:
  gpt-x: {input: 1, input: 2, cache_read: 0.1, output: 4}
`,
			want: `ops.yaml:3:21: "input" is given twice (first at line 3)`,
		},
		{
			name: "negative and malformed prices",
			file: `version: 1
openai:
  gpt-x:
    input: -1
    cache_read: 1e-1
    output: .5
  gpt-y:
    input: 0.0000000001
    cache_read: 2000000
    output: "abc"
  gpt-z:
    input:
    cache_read: [1]
    output: 0x10
`,
			want: `ops.yaml:4:12: input: negative price "-1"
ops.yaml:5:17: cache_read: "1e-1" is not a price; write dollars per million tokens as a plain decimal such as 3 or 0.30
ops.yaml:6:13: output: ".5" is not a price; write dollars per million tokens as a plain decimal such as 3 or 0.30
ops.yaml:8:12: input: "0.0000000001" has more than nine decimals (finer than a nano-dollar per million tokens)
ops.yaml:9:17: cache_read: price 2000000 is above the limit of 1000000 dollars per million tokens
ops.yaml:10:13: output: "abc" is not a price; write dollars per million tokens as a plain decimal such as 3 or 0.30
ops.yaml:12:11: input must be a price in dollars per million tokens, such as 3.75
ops.yaml:13:17: cache_read must be a price in dollars per million tokens, such as 3.75
ops.yaml:14:13: output: "0x10" is not a price; write dollars per million tokens as a plain decimal such as 3 or 0.30`,
		},
		{
			name: "missing prices",
			file: `version: 1
bedrock:
  anthropic.claude-x-v1:0:
    input: 3
    output: 15
`,
			want: `ops.yaml:3:3: model "anthropic.claude-x-v1:0" is missing cache_write_5m, cache_write_1h, cache_read`,
		},
		{
			name: "openai has no cache writes",
			file: `version: 1
openai:
  gpt-x: {input: 1, cache_read: 0.1, output: 4, cache_write_5m: 1.25}
`,
			want: `ops.yaml:3:49: openai has no cache-write price (a cache write costs the input price); remove cache_write_5m`,
		},
		{
			name: "long context",
			file: `version: 1
anthropic:
  claude-x:
    input: 3
    output: 15
    cache_write_5m: 3.75
    cache_write_1h: 6
    cache_read: 0.30
    long_context: {input: 6, output: 22.5, cache_write_5m: 7.5, cache_write_1h: 12, cache_read: 0.6, bogus: 1}
  claude-y:
    input: 3
    output: 15
    cache_write_5m: 3.75
    cache_write_1h: 6
    cache_read: 0.30
    long_context: {above: -1, input: 6}
`,
			want: `ops.yaml:9:19: long_context is missing above (the prompt size in tokens from which its prices apply)
ops.yaml:9:102: unknown key "bogus" in long_context; allowed: above, input, output, cache_write_5m, cache_write_1h, cache_read
ops.yaml:16:19: long_context is missing output, cache_write_5m, cache_write_1h, cache_read
ops.yaml:16:27: above must be a positive whole number of prompt tokens, got "-1"`,
		},
		{
			name: "regional premium",
			file: `version: 1
anthropic:
  claude-x: {input: 3, output: 15, cache_write_5m: 3.75, cache_write_1h: 6, cache_read: 0.3, regional_premium_percent: 10}
bedrock:
  anthropic.claude-x-v1:0: {input: 3, output: 15, cache_write_5m: 3.75, cache_write_1h: 6, cache_read: 0.3, regional_premium_percent: 150}
`,
			want: `ops.yaml:3:94: regional_premium_percent applies to bedrock only
ops.yaml:5:135: regional_premium_percent must be a whole number from 0 to 100, got "150"`,
		},
		{
			name: "bad names",
			file: `version: 1
openai:
  "gpt x": {input: 1, cache_read: 0.1, output: 4}
  "": {input: 1, cache_read: 0.1, output: 4}
  gpt-y: {aliases: "gpt-z", input: 1, cache_read: 0.1, output: 4}
  [a]: {input: 1}
`,
			want: `ops.yaml:3:3: model ID "gpt x" has a character outside A-Z a-z 0-9 . - _ : / @ +
ops.yaml:4:3: model ID is empty
ops.yaml:5:20: aliases must be a list of model names
ops.yaml:6:3: a key must be a plain string`,
		},
		{
			name: "top level",
			file: `versoin: 1
azure:
  gpt-x: {input: 1}
`,
			want: `ops.yaml:1:1: unknown key "versoin"; expected version or a provider (anthropic, bedrock, openai)
ops.yaml:1:1: missing version; start the file with: version: 1
ops.yaml:2:1: unknown key "azure"; expected version or a provider (anthropic, bedrock, openai)`,
		},
		{
			name: "version 2",
			file: "version: 2\n",
			want: `ops.yaml:1:10: unsupported version "2"; this Warden reads version 1`,
		},
		{
			name: "anchors and aliases",
			file: `version: 1
openai:
  gpt-x: &p {input: 1, cache_read: 0.1, output: 4}
  gpt-y: *p
`,
			want: `ops.yaml:3:10: anchors and aliases are not allowed in a price file
ops.yaml:4:10: anchors and aliases are not allowed in a price file`,
		},
		{
			name: "not a mapping",
			file: "- a\n- b\n",
			want: `ops.yaml:1:1: a price file must be a mapping`,
		},
		{
			name: "provider not a mapping",
			file: "version: 1\nopenai: [gpt-5]\n",
			want: `ops.yaml:2:9: provider openai must be a mapping`,
		},
		{
			name: "syntax",
			file: "version: 1\nopenai:\n  gpt-x: {input: 1\n",
			want: `ops.yaml:2: did not find expected ',' or '}'`,
		},
		{
			name: "two documents",
			file: "version: 1\n---\nversion: 1\n",
			want: `ops.yaml:2: a second YAML document; a price file holds one`,
		},
		{name: "empty", file: "", want: `ops.yaml:1: file is empty; start with: version: 1`},
		{name: "comment only", file: "# nothing\n", want: `ops.yaml:1: file is empty; start with: version: 1`},
		{name: "invalid UTF-8", file: "version: 1\n# \xff\n", want: `ops.yaml:2: invalid UTF-8`},
		{name: "NUL", file: "version: 1\n\x00", want: `ops.yaml:2: NUL byte`},
		{
			name: "too large",
			file: "version: 1\n" + strings.Repeat("#", MaxFileBytes),
			want: `ops.yaml: file is 1048587 bytes; the limit is 1048576`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb, err := Load("ops.yaml", []byte(tt.file))
			if err == nil {
				t.Fatalf("Load succeeded: %v", tb.Models(OpenAI))
			}
			if tb != nil {
				t.Error("Load returned a table with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestLoadTooManyErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("version: 1\nopenai:\n")
	for i := range 200 {
		b.WriteString("  m" + strings.Repeat("x", i) + ": {input: -1, cache_read: 0, output: 0}\n")
	}
	_, err := Load("ops.yaml", []byte(b.String()))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != maxErrors+1 || list[maxErrors].Msg != "too many errors; stopped" {
		t.Fatalf("got %d errors, want %d and a stop: %v", len(list), maxErrors+1, err)
	}
}

func TestLoadMinimal(t *testing.T) {
	t.Parallel()
	tb, err := Load("ops.yaml", []byte("version: 1\nopenai:\nanthropic: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Models(OpenAI))+len(tb.Models(Anthropic)) != 0 {
		t.Error("an empty file priced something")
	}
	tb, err = Load("ops.yaml", []byte(`version: 1
openai:
  gpt-x: {input: "0.000000001", cache_read: 0, output: 1000000}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := tb.Lookup(OpenAI, "gpt-x")
	if p.Input != 1 || p.CacheRead != 0 || p.Output != MaxPrice*Dollar || p.CacheWrite1h != 1 {
		t.Errorf("prices %+v", p)
	}
}

func TestParseDollars(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want Money
	}{
		{"0", 0}, {"3", 3 * Dollar}, {"0.30", 300_000_000}, {"3.75", 3_750_000_000},
		{"0.025", 25_000_000}, {"007.5", 7_500_000_000}, {"1000000", MaxPrice * Dollar},
		{"0.000000001", 1}, {"1000000.000000000", MaxPrice * Dollar},
	} {
		if got, err := parseDollars(tt.in); err != nil || got != tt.want {
			t.Errorf("parseDollars(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", ".", "1.", ".1", "+1", "-0", "1e3", "1_000", " 1", "1.0000000001", "1000000.000000001", "99999999999999999999", "NaN", "١"} {
		if got, err := parseDollars(in); err == nil {
			t.Errorf("parseDollars(%q) = %d, want an error", in, got)
		}
	}
}

// FuzzLoad: no input panics Load, a loaded table prices every name it
// lists without a negative cost, and errors always carry the file name.
func FuzzLoad(f *testing.F) {
	f.Add(defaultFile)
	f.Add([]byte("version: 1\nopenai:\n  gpt-x: {aliases: [y], input: 1, cache_read: 0.1, output: 4}\n"))
	f.Add([]byte("version: 1\nbedrock:\n  a.b-v1:0: {input: 3, output: 15, cache_write_5m: 3.75, cache_write_1h: 6, cache_read: 0.3, regional_premium_percent: 10, long_context: {above: 1, input: 6, output: 22.5, cache_write_5m: 7.5, cache_write_1h: 12, cache_read: 0.6}}\n"))
	f.Add([]byte("version: 1\nopenai:\n  gpt-x: &p {input: 1}\n  gpt-y: *p\n"))
	f.Add([]byte("version: 1\n---\nversion: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := Load("f.yaml", data)
		if err != nil {
			if tb != nil {
				t.Fatal("table and error")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if !strings.HasPrefix(e.Error(), "f.yaml") {
					t.Fatalf("error without the file name: %q", e.Error())
				}
			}
			return
		}
		for _, provider := range providers {
			for _, m := range tb.Models(provider) {
				p, ok := tb.Lookup(provider, m)
				if !ok {
					t.Fatalf("%s %q listed but unknown", provider, m)
				}
				tk := Tokens{Input: 1_000, Output: 1_000, CacheRead: 1_000, CacheWrite5m: 1_000, CacheWrite1h: 1_000}
				if c, w := p.Cost(tk), p.WorstCase(tk.Prompt(), tk.Output); c < 0 || c > w {
					t.Fatalf("%s %q: Cost %d, WorstCase %d", provider, m, c, w)
				}
			}
		}
		Default().Merge(tb)
	})
}
