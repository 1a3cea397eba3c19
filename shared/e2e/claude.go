package e2e

import (
	"path/filepath"
	"testing"
	"time"
)

// ClaudeOptions configures one headless Claude Code run.
type ClaudeOptions struct {
	// BaseURL is the Anthropic API base URL without /v1 (ModelStub.URL, or a gateway). Required.
	BaseURL string
	// Token is sent as Authorization: Bearer (ANTHROPIC_AUTH_TOKEN); DefaultToken if empty.
	Token string
	// Dir is the working directory; a fresh temporary directory if empty.
	Dir string
	// Home is HOME; a fresh one that has completed onboarding if empty. Pass an earlier
	// Result.Home to continue a session (with Args such as --resume SESSION).
	Home string
	// Prompt is the user prompt; DefaultPrompt if empty.
	Prompt string
	// Settings is the JSON content of a settings file passed with --settings (for example
	// hooks). Claude Code runs hooks from it without any trust step. Managed (policy-tier)
	// settings are read only from /etc/claude-code/managed-settings.json, which tests must not
	// write: CLAUDE_CODE_MANAGED_SETTINGS_PATH is ignored by release builds, and hooks passed with
	// the hidden --managed-settings flag do not run.
	Settings string
	// PermissionMode is passed as --permission-mode; bypassPermissions if empty, so Bash runs
	// without local allow rules (PreToolUse hooks still decide).
	PermissionMode string
	// Args are extra command-line arguments.
	Args []string
	// Env is extra environment, KEY=VALUE; it wins over the harness's own.
	Env []string
	// Timeout bounds the run; DefaultTimeout if zero.
	Timeout time.Duration
}

// RunClaude runs `claude -p PROMPT --output-format json` against opts.BaseURL with stdin from
// /dev/null, a fresh HOME that has completed onboarding, nonessential traffic, telemetry and
// auto-update switched off, and IS_SANDBOX=1 so that bypassPermissions is allowed as root. It
// fails the test if the client cannot be started or does not finish within the timeout; the exit
// code is only reported.
func RunClaude(t testing.TB, opts ClaudeOptions) Result {
	t.Helper()
	claude, _ := Clients(t)
	if opts.BaseURL == "" {
		t.Fatal("e2e: RunClaude: BaseURL is required")
	}
	home := opts.Home
	if home == "" {
		home = t.TempDir()
		writeFile(t, filepath.Join(home, ".claude.json"), `{"hasCompletedOnboarding": true}`+"\n")
	}
	argv := []string{claude, "-p", orDefault(opts.Prompt, DefaultPrompt), "--output-format", "json",
		"--permission-mode", orDefault(opts.PermissionMode, "bypassPermissions")}
	if opts.Settings != "" {
		settings := filepath.Join(t.TempDir(), "settings.json")
		writeFile(t, settings, opts.Settings)
		argv = append(argv, "--settings", settings)
	}
	argv = append(argv, opts.Args...)

	env := append(baseEnv(home),
		"ANTHROPIC_BASE_URL="+opts.BaseURL,
		"ANTHROPIC_AUTH_TOKEN="+orDefault(opts.Token, DefaultToken),
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_TELEMETRY=1",
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1",
		"IS_SANDBOX=1",
	)
	env = append(env, opts.Env...)

	return run(t, invocation{name: "claude", argv: argv, dir: opts.Dir, env: env, timeout: opts.Timeout, home: home})
}
