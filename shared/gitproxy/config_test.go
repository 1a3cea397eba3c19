package gitproxy

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GITHUB_TOKEN": "ghp_all", "ACME_TOKEN": "ghp_acme", "WEB_TOKEN": "ghp_web"}
	c, err := LoadConfig("git.yaml", []byte(`upstreams:
  github.com: {url: https://github.com, username: x-access-token, password_env: GITHUB_TOKEN}
  github.com/acme: {password_env: ACME_TOKEN}
  github.com/acme/web: {password_env: WEB_TOKEN}
  git.example.com: {url: "https://git.example.com/scm"}
`), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		host, repo string
		want       Upstream
	}{
		{"github.com", "other/x", Upstream{"https://github.com", "x-access-token", "ghp_all"}},
		{"github.com", "acme/api", Upstream{"https://github.com", "x-access-token", "ghp_acme"}},
		{"github.com", "acme/web", Upstream{"https://github.com", "x-access-token", "ghp_web"}},
		{"git.example.com", "team/x", Upstream{URL: "https://git.example.com/scm"}},
	} {
		if got, err := c.Lookup(context.Background(), tt.host, tt.repo); err != nil || got != tt.want {
			t.Errorf("%s/%s: %+v, %v; want %+v", tt.host, tt.repo, got, err, tt.want)
		}
	}
	if _, err := c.Lookup(context.Background(), "gitlab.com", "a/b"); !errors.Is(err, ErrNoUpstream) {
		t.Errorf("an unknown host: %v", err)
	}
	if h := c.Hosts(); strings.Join(h, ",") != "git.example.com,github.com" {
		t.Errorf("hosts %v", h)
	}
}

func TestConfigRefuses(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct{ src, says string }{
		"unknown field":   {"upstreams:\n  github.com: {url: https://github.com, token: x}\n", "field token not found"},
		"no url":          {"upstreams:\n  github.com: {username: u}\n", "upstream github.com: no url"},
		"bad url":         {"upstreams:\n  github.com: {url: ftp://github.com}\n", "is not an http(s) URL"},
		"url with secret": {"upstreams:\n  github.com: {url: \"https://user:pw@github.com\"}\n", "without credentials"},
		"empty variable":  {"upstreams:\n  github.com: {url: https://github.com, password_env: NOPE}\n", "$NOPE is empty"},
		"bad key":         {"upstreams:\n  \"github.com/../x\": {url: https://github.com}\n", "is not a host or host/organization"},
		"too large":       {strings.Repeat("#", MaxConfigBytes+1), "larger than"},
	} {
		_, err := LoadConfig("git.yaml", []byte(tt.src), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), "git.yaml") {
			t.Errorf("%s: %v, want %q", name, err, tt.says)
		}
	}
}

// FuzzLoadConfig: any file is refused with an error that names it, or
// loaded into upstreams that each have a valid host and, once looked up,
// an http(s) URL.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("upstreams:\n  github.com: {url: https://github.com, username: x-access-token, password_env: T}\n  github.com/acme: {password_env: T}\n"))
	f.Add([]byte("upstreams:\n  github.com/acme/web: {url: \"http://127.0.0.1:8080/scm\"}\n"))
	f.Add([]byte("upstreams: {a: {url: ftp://x}}\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadConfig("git.yaml", data, func(string) string { return "token" })
		if err != nil {
			if !strings.HasPrefix(err.Error(), "git.yaml: ") {
				t.Fatalf("an error that does not name the file: %v", err)
			}
			return
		}
		for key := range c.entries {
			host, path, _ := strings.Cut(key, "/")
			if !validHost(host) || path != "" && !validRepo(path) {
				t.Fatalf("loaded a bad key %q", key)
			}
			up, err := c.Lookup(context.Background(), host, path+"/x")
			if err == nil && !strings.HasPrefix(up.URL, "http://") && !strings.HasPrefix(up.URL, "https://") {
				t.Fatalf("%s: upstream URL %q", key, up.URL)
			}
		}
	})
}
