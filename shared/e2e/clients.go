package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Paths of the entry points inside the directory that install-clients.sh prints.
const (
	claudeEntry = "node_modules/@anthropic-ai/claude-code/bin/claude.exe"
	codexEntry  = "node_modules/@openai/codex/bin/codex.js"
)

var clients struct {
	once   sync.Once
	claude string
	codex  string
	err    error
}

// Clients installs the pinned Claude Code and Codex CLIs (once per process, cached across
// processes by install-clients.sh) and returns the paths of their executables: Claude Code's
// native claude binary and Codex's codex.js launcher (a node script). It fails the test if they
// cannot be installed; it never skips.
func Clients(t testing.TB) (claude, codex string) {
	t.Helper()
	clients.once.Do(func() {
		clients.claude, clients.codex, clients.err = installClients()
	})
	if clients.err != nil {
		t.Fatalf("e2e: install the real clients: %v", clients.err)
	}
	return clients.claude, clients.codex
}

// installClients runs install-clients.sh from this package's directory and returns the two entry
// points under the directory it prints.
func installClients() (claude, codex string, err error) {
	script, err := installScript()
	if err != nil {
		return "", "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("run %s: %w\n%s", script, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", "", fmt.Errorf("run %s: printed no directory", script)
	}
	claude = filepath.Join(dir, claudeEntry)
	codex = filepath.Join(dir, codexEntry)
	for _, p := range []string{claude, codex} {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			return "", "", fmt.Errorf("client entry point %s after install: not an executable file (%v)", p, err)
		}
	}
	return claude, codex, nil
}

// installScript finds install-clients.sh next to this source file; tests of other packages run in
// their own directories, so a relative path would not do.
func installScript() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locate install-clients.sh: no caller information")
	}
	script := filepath.Join(filepath.Dir(file), "install-clients.sh")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("locate install-clients.sh: %w", err)
	}
	return script, nil
}
