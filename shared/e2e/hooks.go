package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// HookScript writes an executable /bin/sh script with body (the lines after the #! line) into a
// fresh temporary directory and returns its path, for use as a command hook.
func HookScript(t testing.TB, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	writeFile(t, path, "#!/bin/sh\n"+body)
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatalf("e2e: make %s executable: %v", path, err)
	}
	return path
}

// ClaudeHookSettings returns Claude Code settings JSON with one command hook for event (e.g.
// "PreToolUse") on tools matching matcher (e.g. "Bash"), for ClaudeOptions.Settings.
func ClaudeHookSettings(t testing.TB, event, matcher, command string) string {
	t.Helper()
	settings := map[string]any{
		"hooks": map[string]any{
			event: []any{map[string]any{
				"matcher": matcher,
				"hooks":   []any{map[string]any{"type": "command", "command": command}},
			}},
		},
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		t.Fatalf("e2e: marshal hook settings: %v", err)
	}
	return string(b)
}
