package llm

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/wardenhq/warden/policy/yamldoc"
)

// API is the wire protocol an upstream speaks.
type API string

// The upstream APIs.
const (
	Anthropic API = "anthropic" // Messages API: /v1/messages, /v1/messages/count_tokens, /v1/models
	OpenAI    API = "openai"    // Responses and Chat Completions: /v1/responses, /v1/chat/completions
	Bedrock   API = "bedrock"   // Bedrock Runtime: InvokeModel[WithResponseStream]
)

// Upstream is a provider endpoint that Warden calls with a key only it holds.
type Upstream struct {
	Name string
	API  API
	// Provider names the price table's provider, and the llm resource's
	// first part: the policy sees "anthropic/claude-sonnet-4-5".
	Provider string
	URL      *url.URL
	// Key is the provider credential. It is never logged, recorded or
	// sent anywhere but to this upstream.
	Key string
	// KeySource says where Key came from, for messages ("$ANTHROPIC_API_KEY").
	KeySource string
	// HeaderTimeout bounds the wait for the upstream's response headers
	// (a non-streamed answer arrives whole); IdleTimeout the silence
	// between two reads of a streamed body.
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
}

// MissingKey reports whether the upstream cannot be called for want of a
// key. A Bedrock upstream without one signs with the AWS credentials of
// the Warden process instead.
func (u *Upstream) MissingKey() bool { return u.Key == "" && u.API != Bedrock }

// Route sends the models matching a glob to an upstream.
type Route struct {
	Model    string // path.Match pattern
	Upstream string
}

// Config is where each model's calls go. Routes are tried in order; the
// first whose pattern matches the model decides.
type Config struct {
	Upstreams map[string]*Upstream
	Routes    []Route
}

// Resolve returns the upstream for a model called through the front end
// speaking api. An upstream of another API cannot serve it, except that
// Bedrock serves the Anthropic Messages API (translated).
func (c *Config) Resolve(api API, model string) (*Upstream, error) {
	for _, r := range c.Routes {
		if ok, _ := path.Match(r.Model, model); !ok {
			continue
		}
		u := c.Upstreams[r.Upstream]
		if u.API != api && !(api == Anthropic && u.API == Bedrock) {
			return nil, fmt.Errorf("model %q is routed to upstream %s, which speaks the %s API, not %s", model, u.Name, u.API, api)
		}
		return u, nil
	}
	return nil, fmt.Errorf("no upstream is configured for model %q", model)
}

// Defaults for an upstream's timeouts: Claude Code gives up on a stream
// after 300 s without bytes, so Warden waits as long.
const (
	DefaultHeaderTimeout = 10 * time.Minute
	DefaultIdleTimeout   = 5 * time.Minute
	// MaxConfigBytes bounds a configuration file.
	MaxConfigBytes = 1 << 20
)

// DefaultConfig sends Claude models to Anthropic and every other model to
// OpenAI, with the keys from ANTHROPIC_API_KEY and OPENAI_API_KEY.
func DefaultConfig(getenv func(string) string) *Config {
	mk := func(name string, api API, rawURL, env string) *Upstream {
		u, _ := url.Parse(rawURL) // constant, valid
		return &Upstream{Name: name, API: api, Provider: name, URL: u, Key: getenv(env), KeySource: "$" + env,
			HeaderTimeout: DefaultHeaderTimeout, IdleTimeout: DefaultIdleTimeout}
	}
	return &Config{
		Upstreams: map[string]*Upstream{
			"anthropic": mk("anthropic", Anthropic, "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
			"openai":    mk("openai", OpenAI, "https://api.openai.com", "OPENAI_API_KEY"),
		},
		Routes: []Route{{Model: "claude-*", Upstream: "anthropic"}, {Model: "*", Upstream: "openai"}},
	}
}

// configFile is the YAML form of Config.
type configFile struct {
	Upstreams map[string]struct {
		API           string `yaml:"api"`
		Provider      string `yaml:"provider"`
		URL           string `yaml:"url"`
		KeyEnv        string `yaml:"key_env"`
		HeaderTimeout string `yaml:"header_timeout"`
		IdleTimeout   string `yaml:"idle_timeout"`
	} `yaml:"upstreams"`
	Routes []struct {
		Model    string `yaml:"model"`
		Upstream string `yaml:"upstream"`
	} `yaml:"routes"`
}

// LoadConfig reads a gateway configuration file:
//
//	upstreams:
//	  anthropic: {api: anthropic, url: https://api.anthropic.com, key_env: ANTHROPIC_API_KEY}
//	  bedrock:   {api: bedrock, url: https://bedrock-runtime.eu-central-1.amazonaws.com}
//	routes:
//	  - {model: "claude-*", upstream: anthropic}
//
// Keys are never written in the file: key_env names the environment
// variable that holds one. provider defaults to the upstream's name, the
// timeouts to DefaultHeaderTimeout and DefaultIdleTimeout.
func LoadConfig(name string, data []byte, getenv func(string) string) (*Config, error) {
	var f configFile
	if err := yamldoc.Decode(name, data, MaxConfigBytes, &f); err != nil {
		return nil, err
	}
	c := &Config{Upstreams: map[string]*Upstream{}}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	names := make([]string, 0, len(f.Upstreams))
	for n := range f.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := f.Upstreams[n]
		u := &Upstream{Name: n, API: API(d.API), Provider: d.Provider, HeaderTimeout: DefaultHeaderTimeout, IdleTimeout: DefaultIdleTimeout}
		if u.Provider == "" {
			u.Provider = n
		}
		switch u.API {
		case Anthropic, OpenAI, Bedrock:
		default:
			bad("upstream %s: api must be anthropic, openai or bedrock, not %q", n, d.API)
		}
		parsed, err := url.Parse(d.URL)
		if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" || parsed.User != nil {
			bad("upstream %s: url %q is not an http(s) URL without credentials", n, d.URL)
		}
		u.URL = parsed
		if d.KeyEnv != "" {
			u.Key, u.KeySource = getenv(d.KeyEnv), "$"+d.KeyEnv
		}
		for _, t := range []struct {
			field, val string
			dst        *time.Duration
		}{{"header_timeout", d.HeaderTimeout, &u.HeaderTimeout}, {"idle_timeout", d.IdleTimeout, &u.IdleTimeout}} {
			if t.val == "" {
				continue
			}
			if dur, err := time.ParseDuration(t.val); err != nil || dur <= 0 {
				bad("upstream %s: %s %q is not a positive duration", n, t.field, t.val)
			} else {
				*t.dst = dur
			}
		}
		c.Upstreams[n] = u
	}
	for i, r := range f.Routes {
		if _, err := path.Match(r.Model, ""); err != nil || r.Model == "" {
			bad("routes[%d]: model %q is not a valid pattern", i, r.Model)
		}
		if _, ok := c.Upstreams[r.Upstream]; !ok {
			bad("routes[%d]: no upstream named %q", i, r.Upstream)
		}
		c.Routes = append(c.Routes, Route{Model: r.Model, Upstream: r.Upstream})
	}
	if len(c.Routes) == 0 {
		bad("no routes: name at least one, e.g. {model: \"*\", upstream: %s}", strings.Join(names, "|"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}
