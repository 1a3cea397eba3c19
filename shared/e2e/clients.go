package e2e

import (
	"github.com/wardenhq/warden/shared/installer"

	"fmt"
	"os"
	"path/filepath"
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
	script, err := installer.Script("install-clients.sh")
	if err != nil {
		return "", "", err
	}
	out, err := installer.Run(script)
	if err != nil {
		return "", "", err
	}
	dir := installer.LastLine(out)
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
