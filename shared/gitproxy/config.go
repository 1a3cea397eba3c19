package gitproxy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/wardenhq/warden/policy/yamldoc"
)

// MaxConfigBytes bounds a git upstreams file.
const MaxConfigBytes = 64 << 10

// Config is the upstreams Warden's git remote proxies to, from a file such
// as:
//
//	upstreams:
//	  github.com: {url: https://github.com, username: x-access-token, password_env: GITHUB_TOKEN}
//	  github.com/acme: {password_env: ACME_GITHUB_TOKEN}   # this organization's repositories
//
// A key is a host, or a host and a path prefix (an organization); the
// longest that matches a repository is its upstream, its unset fields
// taken from the shorter ones. The credential is named by an environment
// variable (warden serve) or a secret (AWS), never written in the file.
type Config struct {
	entries map[string]Upstream
}

type configFile struct {
	Upstreams map[string]struct {
		URL         string `yaml:"url"`
		Username    string `yaml:"username"`
		PasswordEnv string `yaml:"password_env"`
	} `yaml:"upstreams"`
}

// LoadConfig reads a git upstreams file; getenv resolves the credentials'
// variables. Every mistake is reported, with the file's name.
func LoadConfig(name string, data []byte, getenv func(string) string) (*Config, error) {
	var f configFile
	if err := yamldoc.Decode(name, data, MaxConfigBytes, &f); err != nil {
		return nil, err
	}
	c := &Config{entries: map[string]Upstream{}}
	var errs []error
	for key, d := range f.Upstreams {
		host, path, _ := strings.Cut(key, "/")
		if !validHost(host) || (path != "" && !validRepo(path)) {
			errs = append(errs, fmt.Errorf("%s: upstream %q is not a host or host/organization", name, key))
			continue
		}
		if d.URL != "" {
			u, err := url.Parse(d.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
				errs = append(errs, fmt.Errorf("%s: upstream %s: url %q is not an http(s) URL without credentials", name, key, d.URL))
				continue
			}
		} else if path == "" {
			errs = append(errs, fmt.Errorf("%s: upstream %s: no url", name, key))
			continue
		}
		up := Upstream{URL: d.URL, Username: d.Username}
		if d.PasswordEnv != "" {
			if up.Password = getenv(d.PasswordEnv); up.Password == "" {
				errs = append(errs, fmt.Errorf("%s: upstream %s: $%s is empty", name, key, d.PasswordEnv))
				continue
			}
		}
		c.entries[key] = up
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Hosts are the hosts of the configured upstreams, sorted.
func (c *Config) Hosts() []string {
	var hosts []string
	for key := range c.entries {
		host, _, _ := strings.Cut(key, "/")
		if !slices.Contains(hosts, host) {
			hosts = append(hosts, host)
		}
	}
	slices.Sort(hosts)
	return hosts
}

// Lookup implements Upstreams: the longest key that is the repository's
// host, or its host and a leading part of its path.
func (c *Config) Lookup(_ context.Context, host, repo string) (Upstream, error) {
	var up Upstream
	found := false
	parts := strings.Split(repo, "/")
	for i := 0; i <= len(parts); i++ { // host, host/org, ..., host/org/repo
		key := host
		if i > 0 {
			key += "/" + strings.Join(parts[:i], "/")
		}
		e, ok := c.entries[key]
		if !ok {
			continue
		}
		found = true
		if e.URL != "" {
			up.URL = e.URL
		}
		if e.Username != "" {
			up.Username = e.Username
		}
		if e.Password != "" {
			up.Password = e.Password
		}
	}
	if !found || up.URL == "" {
		return Upstream{}, ErrNoUpstream
	}
	return up, nil
}
