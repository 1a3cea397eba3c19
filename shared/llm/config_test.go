package llm

import (
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ANTHROPIC_API_KEY": "sk-ant-x"}
	c, err := LoadConfig("llm.yaml", []byte(`upstreams:
  anthropic: {api: anthropic, url: https://api.anthropic.com, key_env: ANTHROPIC_API_KEY, idle_timeout: 2m}
  bedrock: {api: bedrock, url: https://bedrock-runtime.eu-central-1.amazonaws.com}
routes:
  - {model: "claude-*", upstream: anthropic}
  - {model: "anthropic.*", upstream: bedrock}
`), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a := c.Upstreams["anthropic"]
	if a.Key != "sk-ant-x" || a.KeySource != "$ANTHROPIC_API_KEY" || a.Provider != "anthropic" || a.IdleTimeout != 2*time.Minute || a.HeaderTimeout != DefaultHeaderTimeout {
		t.Errorf("anthropic: %+v", a)
	}
	if up, err := c.Resolve(Anthropic, "claude-sonnet-4-5"); err != nil || up.Name != "anthropic" {
		t.Errorf("claude-sonnet-4-5: %v, %v", up, err)
	}
	for name, tt := range map[string]struct{ src, says string }{
		"empty":          {"", "llm.yaml: the file is empty"},
		"unknown field":  {"upstreams:\n  a: {api: anthropic, url: https://x, key: sk}\n", "field key not found"},
		"two documents":  {"routes: []\n---\nroutes: []\n", "a second YAML document"},
		"bad api":        {"upstreams:\n  a: {api: gemini, url: https://x}\nroutes:\n  - {model: \"*\", upstream: a}\n", "api must be anthropic, openai or bedrock"},
		"no routes":      {"upstreams:\n  a: {api: anthropic, url: https://x}\n", "no routes"},
		"unknown route":  {"upstreams:\n  a: {api: anthropic, url: https://x}\nroutes:\n  - {model: \"*\", upstream: b}\n", `no upstream named "b"`},
		"bad timeout":    {"upstreams:\n  a: {api: anthropic, url: https://x, idle_timeout: -1s}\nroutes:\n  - {model: \"*\", upstream: a}\n", "is not a positive duration"},
		"url with a key": {"upstreams:\n  a: {api: anthropic, url: \"https://k:s@x\"}\nroutes:\n  - {model: \"*\", upstream: a}\n", "without credentials"},
		"too large":      {strings.Repeat("#", MaxConfigBytes+1), "larger than"},
	} {
		_, err := LoadConfig("llm.yaml", []byte(tt.src), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tt.says) || !strings.HasPrefix(err.Error(), "llm.yaml: ") {
			t.Errorf("%s: %v, want %q", name, err, tt.says)
		}
	}
}

// FuzzLoadConfig: any file is refused with an error that names it, or
// loaded into routes that each lead to an upstream with an http(s) URL.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("upstreams:\n  anthropic: {api: anthropic, url: https://api.anthropic.com, key_env: K, header_timeout: 30s}\nroutes:\n  - {model: \"claude-*\", upstream: anthropic}\n"))
	f.Add([]byte("upstreams:\n  o: {api: openai, provider: openai, url: \"http://127.0.0.1:9/v1\"}\nroutes:\n  - {model: \"[\", upstream: o}\n"))
	f.Add([]byte("routes: []\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadConfig("llm.yaml", data, func(string) string { return "key" })
		if err != nil {
			if !strings.HasPrefix(err.Error(), "llm.yaml: ") {
				t.Fatalf("an error that does not name the file: %v", err)
			}
			return
		}
		if len(c.Routes) == 0 {
			t.Fatal("loaded without routes")
		}
		for _, r := range c.Routes {
			up := c.Upstreams[r.Upstream]
			if up == nil || up.URL == nil || up.URL.Host == "" || up.URL.Scheme != "http" && up.URL.Scheme != "https" {
				t.Fatalf("route %+v leads to %+v", r, up)
			}
		}
	})
}
