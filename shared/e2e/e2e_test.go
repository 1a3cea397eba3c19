package e2e

import (
	"strings"
	"testing"
)

// These tests run the real clients, with no Warden in between, to prove the harness: the stub
// makes each client run `git push`, which a hook can stop.

// session runs one scripted session of a real client against stub in dir and checks what the
// client printed: that it gave the final answer, and whether it reported the command denied.
type session struct {
	run   func(t *testing.T, stub *ModelStub, dir string) Result
	check func(t *testing.T, res Result, answer string, denied bool)
}

func claudeSession(opts ClaudeOptions) session {
	return session{
		run: func(t *testing.T, stub *ModelStub, dir string) Result {
			opts.BaseURL, opts.Dir = stub.URL(), dir
			return RunClaude(t, opts)
		},
		check: func(t *testing.T, res Result, answer string, denied bool) {
			out, err := ParseClaudeOutput(res.Stdout)
			if err != nil {
				t.Fatalf("%v\nstdout:\n%s", err, res.Stdout)
			}
			if out.Result != answer || out.IsError {
				t.Errorf("claude result = %q (is_error %v), want %q", out.Result, out.IsError, answer)
			}
			if got := len(out.PermissionDenials) == 1; got != denied {
				t.Errorf("claude permission_denials = %+v, want denied %v", out.PermissionDenials, denied)
			}
		},
	}
}

func codexSession(opts CodexOptions) session {
	return session{
		run: func(t *testing.T, stub *ModelStub, dir string) Result {
			opts.BaseURL, opts.Dir = stub.URL(), dir
			return RunCodex(t, opts)
		},
		check: func(t *testing.T, res Result, answer string, denied bool) {
			events, err := ParseCodexEvents(res.Stdout)
			if err != nil {
				t.Fatalf("%v\nstdout:\n%s", err, res.Stdout)
			}
			var said string
			ran := false
			for _, ev := range events {
				if ev.Type != "item.completed" || ev.Item == nil {
					continue
				}
				switch ev.Item.Type {
				case "agent_message":
					said = ev.Item.Text
				case "command_execution":
					ran = true
				}
			}
			if said != answer {
				t.Errorf("codex agent_message = %q, want %q", said, answer)
			}
			// Codex reports no command_execution item for a command a hook blocked.
			if ran == denied {
				t.Errorf("codex command_execution reported: %v, want %v", ran, !denied)
			}
		},
	}
}

func TestClientPushesBranch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		session session
	}{
		{name: "claude", session: claudeSession(ClaudeOptions{})},
		{name: "codex exec_command", session: codexSession(CodexOptions{})},
		{name: "codex code mode", session: codexSession(CodexOptions{Model: "gpt-6.1-sol"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bare, work := GitRemote(t)
			want := git(t, work, "rev-parse", "feature/x")
			stub := NewModelStub(t, []Step{Bash("git push origin feature/x"), Say("pushed")})

			res := tc.session.run(t, stub, work)

			if res.ExitCode != 0 {
				t.Fatalf("exit code = %d, want 0\nstdout:\n%s\nstderr:\n%s", res.ExitCode, res.Stdout, res.Stderr)
			}
			if len(res.Egress) != 0 {
				t.Errorf("client tried to reach outside hosts: %v", res.Egress)
			}
			if got := RemoteRef(t, bare, "feature/x"); got != want {
				t.Errorf("remote feature/x = %q, want %q", got, want)
			}
			results := stub.ToolResults()
			if len(results) != 1 || !strings.Contains(results[0].Output, "feature/x -> feature/x") || results[0].IsError {
				t.Errorf("tool results = %+v, want one with the push output", results)
			}
			tc.session.check(t, res, "pushed", false)
			for _, r := range stub.Requests() {
				if r.Side || r.Step < 0 {
					t.Errorf("unexpected request %s %s (side %v, step %d)", r.Method, r.Path, r.Side, r.Step)
				}
			}
		})
	}
}

func TestHookDeniesPush(t *testing.T) {
	t.Parallel()
	deny := HookScript(t, "deny.sh", "echo denied-by-test >&2\nexit 2\n")
	denyHooks := []CodexHook{{Event: "PreToolUse", Matcher: "Bash", Command: deny}}
	tests := []struct {
		name    string
		session session
		// blocked is whether the hook stops the push: Codex skips hooks it does not trust.
		blocked bool
		// output is what the model is told about the blocked command, within the tool result.
		output string
	}{
		{
			name:    "claude settings",
			session: claudeSession(ClaudeOptions{Settings: ClaudeHookSettings(t, "PreToolUse", "Bash", deny)}),
			blocked: true,
			output:  "PreToolUse:Bash hook error: [" + deny + "]: denied-by-test\n",
		},
		{
			name:    "codex trust recorded",
			session: codexSession(CodexOptions{Hooks: denyHooks}),
			blocked: true,
			output:  "Command blocked by PreToolUse hook: denied-by-test. Command: git push origin feature/x",
		},
		{
			name:    "codex trust bypassed",
			session: codexSession(CodexOptions{Hooks: denyHooks, HookTrust: TrustBypass}),
			blocked: true,
			output:  "Command blocked by PreToolUse hook: denied-by-test. Command: git push origin feature/x",
		},
		{
			name:    "codex code mode",
			session: codexSession(CodexOptions{Hooks: denyHooks, Model: "gpt-6.1-sol"}),
			blocked: true,
			output:  "Script error:\nCommand blocked by PreToolUse hook: denied-by-test. Command: git push origin feature/x",
		},
		{
			name:    "codex untrusted hook is skipped",
			session: codexSession(CodexOptions{Hooks: denyHooks, HookTrust: TrustNone}),
			blocked: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bare, work := GitRemote(t)
			stub := NewModelStub(t, []Step{Bash("git push origin feature/x"), Say("done")})

			res := tc.session.run(t, stub, work)

			if res.ExitCode != 0 {
				t.Fatalf("exit code = %d, want 0\nstdout:\n%s\nstderr:\n%s", res.ExitCode, res.Stdout, res.Stderr)
			}
			if len(res.Egress) != 0 {
				t.Errorf("client tried to reach outside hosts: %v", res.Egress)
			}
			if pushed := RemoteRef(t, bare, "feature/x") != ""; pushed == tc.blocked {
				t.Errorf("remote has feature/x: %v, want %v", pushed, !tc.blocked)
			}
			results := stub.ToolResults()
			if len(results) != 1 {
				t.Fatalf("tool results = %+v, want 1", results)
			}
			if tc.blocked && !strings.Contains(results[0].Output, tc.output) {
				t.Errorf("tool result = %q, want it to contain %q", results[0].Output, tc.output)
			}
			if !tc.blocked && strings.Contains(results[0].Output, "denied-by-test") {
				t.Errorf("tool result = %q, want the push output", results[0].Output)
			}
			tc.session.check(t, res, "done", tc.blocked)
		})
	}
}
