package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DefaultCodexModel is the model Codex asks for when the options give none. Codex 0.169's own
// default models are code_mode_only: they get a JavaScript "exec" tool instead of the plain
// exec_command function; gpt-5.5 gets exec_command.
const DefaultCodexModel = "gpt-5.5"

// codexAPIKeyEnv is the variable the generated Codex provider reads its token from.
const codexAPIKeyEnv = "WARDEN_E2E_API_KEY"

// HookTrust says how RunCodex gets Codex to run user hooks, which it otherwise skips.
type HookTrust int

const (
	// TrustRecorded, the default, records trust for each of CodexOptions.Hooks in config.toml
	// ([hooks.state."KEY"] trusted_hash = "sha256:…"), as Codex's own /hooks review does. Hooks
	// written into CodexOptions.Config stay untrusted.
	TrustRecorded HookTrust = iota
	// TrustBypass passes --dangerously-bypass-hook-trust: every configured hook runs.
	TrustBypass
	// TrustNone records nothing: Codex skips the hooks and runs the tools (it fails open).
	TrustNone
)

// CodexHook is one command hook in Codex's config.toml, a [[hooks.EVENT]] group with one
// handler.
type CodexHook struct {
	// Event is the hook event, e.g. "PreToolUse", "PostToolUse", "SessionStart", "Stop".
	Event string
	// Matcher is the tool-name pattern, e.g. "Bash"; empty matches all.
	Matcher string
	// Command is the shell command Codex runs with the event's JSON on stdin.
	Command string
	// TimeoutSec is the handler's timeout; Codex's default (600 s) if zero.
	TimeoutSec int
}

// codexDefaultHookTimeout is the timeout Codex fills in for a handler that sets none, which its
// trust hash covers.
const codexDefaultHookTimeout = 600

// CodexOptions configures one headless codex exec run.
type CodexOptions struct {
	// BaseURL is the API base URL without /v1 (ModelStub.URL, or a gateway). Required.
	BaseURL string
	// Token is sent as Authorization: Bearer; DefaultToken if empty.
	Token string
	// Dir is the working directory; a fresh temporary directory if empty.
	Dir string
	// Home is HOME, with CODEX_HOME at Home/.codex; a fresh one if empty.
	Home string
	// Prompt is the user prompt; DefaultPrompt if empty.
	Prompt string
	// Model is the model Codex asks for; DefaultCodexModel if empty.
	Model string
	// Hooks are command hooks written into config.toml and trusted as HookTrust says.
	Hooks []CodexHook
	// HookTrust says how Hooks (and hooks in Config) get to run; TrustRecorded if zero.
	HookTrust HookTrust
	// Config is TOML appended to the generated config.toml.
	Config string
	// Args are extra arguments to codex exec, placed before the prompt.
	Args []string
	// Env is extra environment, KEY=VALUE; it wins over the harness's own.
	Env []string
	// Timeout bounds the run; DefaultTimeout if zero.
	Timeout time.Duration
}

// RunCodex runs `codex exec --json` against opts.BaseURL through a generated config.toml (a
// model_provider with wire_api = "responses", approvals off, no sandbox), with stdin from
// /dev/null, plugins disabled and a fresh CODEX_HOME. It fails the test if the client cannot be
// started or does not finish within the timeout; the exit code is only reported.
func RunCodex(t testing.TB, opts CodexOptions) Result {
	t.Helper()
	_, codex := Clients(t)
	if opts.BaseURL == "" {
		t.Fatal("e2e: RunCodex: BaseURL is required")
	}
	home := opts.Home
	if home == "" {
		home = t.TempDir()
	}
	codexHome := filepath.Join(home, ".codex")
	if err := os.MkdirAll(codexHome, 0o700); err != nil {
		t.Fatalf("e2e: create CODEX_HOME: %v", err)
	}
	if resolved, err := filepath.EvalSymlinks(codexHome); err == nil {
		codexHome = resolved // hook trust keys name the real path of config.toml
	}
	configPath := filepath.Join(codexHome, "config.toml")
	config, err := codexConfig(configPath, opts)
	if err != nil {
		t.Fatalf("e2e: RunCodex: %v", err)
	}
	writeFile(t, configPath, config)

	argv := []string{codex, "exec", "--json", "--disable", "plugins", "--skip-git-repo-check",
		"--dangerously-bypass-approvals-and-sandbox"}
	if opts.HookTrust == TrustBypass {
		argv = append(argv, "--dangerously-bypass-hook-trust")
	}
	argv = append(argv, opts.Args...)
	argv = append(argv, orDefault(opts.Prompt, DefaultPrompt))

	env := append(baseEnv(home),
		"CODEX_HOME="+codexHome,
		codexAPIKeyEnv+"="+orDefault(opts.Token, DefaultToken),
	)
	env = append(env, opts.Env...)
	return run(t, invocation{name: "codex", argv: argv, dir: opts.Dir, env: env, timeout: opts.Timeout, home: home})
}

// codexConfig renders config.toml for opts, to be stored at configPath: the provider, the hooks
// and their trust, then opts.Config.
func codexConfig(configPath string, opts CodexOptions) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `model = %s
model_provider = "e2e"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.e2e]
name = "Warden e2e"
base_url = %s
env_key = %s
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 1
stream_idle_timeout_ms = 60000

[analytics]
enabled = false

[feedback]
enabled = false
`, strconv.Quote(orDefault(opts.Model, DefaultCodexModel)),
		strconv.Quote(strings.TrimSuffix(opts.BaseURL, "/")+"/v1"), strconv.Quote(codexAPIKeyEnv))

	groups := map[string]int{} // next group index per event, which the trust key names
	var trust []string
	for _, h := range opts.Hooks {
		if !hookEventRE.MatchString(h.Event) {
			return "", fmt.Errorf("hook event %q: want a name such as PreToolUse", h.Event)
		}
		if h.Command == "" {
			return "", fmt.Errorf("hook for %s: empty command", h.Event)
		}
		fmt.Fprintf(&b, "\n[[hooks.%s]]\n", h.Event)
		if h.Matcher != "" {
			fmt.Fprintf(&b, "matcher = %s\n", strconv.Quote(h.Matcher))
		}
		fmt.Fprintf(&b, "\n[[hooks.%s.hooks]]\ntype = \"command\"\ncommand = %s\n", h.Event, strconv.Quote(h.Command))
		if h.TimeoutSec != 0 {
			fmt.Fprintf(&b, "timeout = %d\n", h.TimeoutSec)
		}
		event := snakeCase(h.Event)
		key := fmt.Sprintf("%s:%s:%d:0", configPath, event, groups[h.Event])
		groups[h.Event]++
		hash, err := codexHookHash(event, h)
		if err != nil {
			return "", err
		}
		trust = append(trust, fmt.Sprintf("\n[hooks.state.%s]\ntrusted_hash = %s\n", strconv.Quote(key), strconv.Quote(hash)))
	}
	if opts.HookTrust == TrustRecorded {
		for _, s := range trust {
			b.WriteString(s)
		}
	}
	if opts.Config != "" {
		b.WriteString("\n" + opts.Config + "\n")
	}
	return b.String(), nil
}

var (
	hookEventRE = regexp.MustCompile(`^[A-Z][A-Za-z]*$`)
	upperRE     = regexp.MustCompile(`[A-Z]`)
)

// snakeCase turns an event name such as PreToolUse into pre_tool_use, as Codex names events in
// hook trust keys and hashes.
func snakeCase(s string) string {
	return strings.TrimPrefix(upperRE.ReplaceAllStringFunc(s, func(m string) string {
		return "_" + strings.ToLower(m)
	}), "_")
}

// codexHookHash is the hash Codex 0.169 records to trust a hook: "sha256:" and the hex SHA-256 of
// the compact JSON, keys sorted, of {"event_name", "hooks": [handler], "matcher"} where the
// handler has its defaults filled in ("async": false, "timeout": 600) and matcher is left out
// when unset. Checked against the currentHash that codex app-server's hooks/list reports.
func codexHookHash(event string, h CodexHook) (string, error) {
	timeout := h.TimeoutSec
	if timeout == 0 {
		timeout = codexDefaultHookTimeout
	}
	identity := map[string]any{ // encoding/json sorts map keys
		"event_name": event,
		"hooks": []map[string]any{{
			"async": false, "command": h.Command, "timeout": timeout, "type": "command",
		}},
	}
	if h.Matcher != "" {
		identity["matcher"] = h.Matcher
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // serde_json does not escape <, > and &
	if err := enc.Encode(identity); err != nil {
		return "", fmt.Errorf("hash hook %s %q: %w", h.Event, h.Command, err)
	}
	sum := sha256.Sum256([]byte(strings.TrimSuffix(buf.String(), "\n")))
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
