package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultTimeout bounds one client run when the options give none.
const DefaultTimeout = 120 * time.Second

// DefaultToken is the API token the clients send when the options give none.
const DefaultToken = "e2e-token"

// DefaultPrompt is the user prompt when the options give none. The stub does not read it.
const DefaultPrompt = "Do the scripted task."

// Result is the outcome of one client run.
type Result struct {
	ExitCode int
	Stdout   string
	Stderr   string
	Duration time.Duration
	// Home is the HOME the client ran with: Claude Code's ~/.claude.json and ~/.claude, Codex's
	// ~/.codex (CODEX_HOME) are there.
	Home string
	// Egress lists the outside hosts the client tried to reach. The clients run with an HTTP
	// proxy on 127.0.0.1 that refuses everything (loopback goes direct), so such a call fails at
	// once rather than hanging.
	Egress []string
}

// invocation is one client process to run.
type invocation struct {
	name    string   // for logs: "claude" or "codex"
	argv    []string // program and arguments
	dir     string   // working directory; a fresh one if empty
	env     []string
	timeout time.Duration // DefaultTimeout if zero
	home    string
}

// baseEnv is a minimal environment: the caller's PATH and nothing of the caller's credentials,
// proxies or client configuration, which would otherwise leak into the run.
func baseEnv(home string) []string {
	env := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"TERM=dumb",
		"NO_COLOR=1",
		"USER=" + orDefault(os.Getenv("USER"), "root"),
		// Commands the clients run use git; keep the machine's git configuration out of them.
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	return env
}

// run executes one client process with stdin from /dev/null in its own process group, and kills
// the group if the timeout passes, which fails the test.
func run(t testing.TB, inv invocation) Result {
	t.Helper()
	if inv.dir == "" {
		inv.dir = t.TempDir()
	}
	if inv.timeout == 0 {
		inv.timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), inv.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, inv.argv[0], inv.argv[1:]...)
	cmd.Dir = inv.dir
	trap := newEgressTrap(t)
	cmd.Env = append(trap.env(), inv.env...) // later entries win: the caller can override
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second

	start := time.Now()
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start), Home: inv.home,
		Egress: trap.attempts()}
	t.Logf("e2e: %s finished in %s: %s", inv.name, res.Duration.Round(time.Millisecond), strings.Join(inv.argv[1:], " "))
	if ctx.Err() != nil {
		t.Fatalf("e2e: %s did not finish within %s\nstdout:\n%s\nstderr:\n%s", inv.name, inv.timeout, res.Stdout, res.Stderr)
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	default:
		t.Fatalf("e2e: run %s: %v\nstderr:\n%s", inv.name, err, res.Stderr)
	}
	return res
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("e2e: write %s: %v", path, err)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
