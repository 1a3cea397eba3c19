package e2e

import (
	"strings"
	"testing"
)

func TestCodexHookHash(t *testing.T) {
	t.Parallel()
	// The wanted hashes are the currentHash that `codex app-server` (0.169.0) reported in
	// hooks/list for the same hooks.
	tests := []struct {
		name string
		hook CodexHook
		want string
	}{
		{
			name: "matcher and default timeout",
			hook: CodexHook{Event: "PreToolUse", Matcher: "Bash", Command: "/tmp/hx/deny.sh"},
			want: "sha256:f30e3d0bec5509f7465ce88fdde2611c3a02f15054bb4ef23c8553c79cff4525",
		},
		{
			name: "timeout",
			hook: CodexHook{Event: "PreToolUse", Matcher: "Bash", Command: "/tmp/hx/deny.sh", TimeoutSec: 30},
			want: "sha256:6364d5df3578c76c53a6a51f5619cbc9495a8d6128ea1a314a59c3470caaff1a",
		},
		{
			name: "no matcher",
			hook: CodexHook{Event: "PostToolUse", Command: "/tmp/hx/deny.sh x"},
			want: "sha256:fc4d58e74d69dcf70fa9a4b2e953373569576c89f178b44d68fd54202c6be3aa",
		},
		{
			name: "characters JSON may escape",
			hook: CodexHook{Event: "Stop", Command: "echo a&b <c> 'é' >/dev/null"},
			want: "sha256:33d598465cfff06b1b77ffa35cf1f34df08e8454c5f12f36d0cfc789ae5579f2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := codexHookHash(snakeCase(tc.hook.Event), tc.hook)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("codexHookHash = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCodexConfig(t *testing.T) {
	t.Parallel()
	hooks := []CodexHook{
		{Event: "PreToolUse", Matcher: "Bash", Command: "/h/pre.sh"},
		{Event: "PreToolUse", Command: "/h/pre2.sh", TimeoutSec: 5},
		{Event: "PostToolUse", Command: "/h/post.sh"},
	}
	tests := []struct {
		name    string
		opts    CodexOptions
		want    []string
		notWant []string
		wantErr string
	}{
		{
			name: "provider",
			opts: CodexOptions{BaseURL: "http://127.0.0.1:9/", Config: "[tui]\nnotifications = false"},
			want: []string{`model = "gpt-5.5"`, `model_provider = "e2e"`, `base_url = "http://127.0.0.1:9/v1"`,
				`env_key = "WARDEN_E2E_API_KEY"`, `wire_api = "responses"`, "\n[tui]\nnotifications = false\n"},
			notWant: []string{"[[hooks."},
		},
		{
			name: "hooks trusted by record",
			opts: CodexOptions{BaseURL: "http://x", Hooks: hooks},
			want: []string{
				"[[hooks.PreToolUse]]\nmatcher = \"Bash\"\n\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\ncommand = \"/h/pre.sh\"\n",
				"[[hooks.PreToolUse]]\n\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\ncommand = \"/h/pre2.sh\"\ntimeout = 5\n",
				`[hooks.state."/c/config.toml:pre_tool_use:0:0"]`,
				`[hooks.state."/c/config.toml:pre_tool_use:1:0"]`,
				`[hooks.state."/c/config.toml:post_tool_use:0:0"]`,
				"trusted_hash = \"sha256:",
			},
		},
		{
			name:    "hooks not trusted",
			opts:    CodexOptions{BaseURL: "http://x", Hooks: hooks, HookTrust: TrustNone},
			want:    []string{"[[hooks.PostToolUse]]"},
			notWant: []string{"hooks.state"},
		},
		{
			name:    "bad event",
			opts:    CodexOptions{BaseURL: "http://x", Hooks: []CodexHook{{Event: "pre_tool_use]\nx", Command: "/h"}}},
			wantErr: `hook event "pre_tool_use]\nx": want a name such as PreToolUse`,
		},
		{
			name:    "no command",
			opts:    CodexOptions{BaseURL: "http://x", Hooks: []CodexHook{{Event: "Stop"}}},
			wantErr: "hook for Stop: empty command",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := codexConfig("/c/config.toml", tc.opts)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("config lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("config has %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestSnakeCase(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"PreToolUse", "pre_tool_use"},
		{"Stop", "stop"},
		{"SessionStart", "session_start"},
		{"UserPromptSubmit", "user_prompt_submit"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			if got := snakeCase(tc.in); got != tc.want {
				t.Errorf("snakeCase(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestGitRemote(t *testing.T) {
	t.Parallel()
	bare, work := GitRemote(t)
	tests := []struct {
		ref       string
		wantEmpty bool // the remote lacks the ref
	}{
		{ref: "main"},
		{ref: "feature/x", wantEmpty: true},
		{ref: "refs/heads/absent", wantEmpty: true},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			t.Parallel()
			got := RemoteRef(t, bare, tc.ref)
			if (got == "") != tc.wantEmpty {
				t.Fatalf("RemoteRef(%q) = %q, want empty %v", tc.ref, got, tc.wantEmpty)
			}
			if got != "" && got == RemoteRef(t, work, tc.ref) {
				t.Errorf("remote %s = clone's %s, want the clone ahead", tc.ref, got)
			}
		})
	}
	if RemoteRef(t, work, "feature/x") == "" {
		t.Error("clone lacks feature/x")
	}
	if parent := git(t, work, "rev-parse", "main~1"); parent != RemoteRef(t, bare, "main") {
		t.Errorf("clone's main~1 = %s, want the remote's main %s", parent, RemoteRef(t, bare, "main"))
	}
}
