package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/e2e"
)

// The real Claude Code and Codex clients, configured by `warden agent
// setup`, driven by a scripted model to run git pushes against a local bare
// repository. Their tool calls must be decided by Warden.

// runAsCLIEnv makes this test binary act as the warden command, so that
// Codex's command hook can run `warden hook` without a separate build.
const runAsCLIEnv = "WARDEN_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(runAsCLIEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// enroll creates a project on l and returns its enrollment key.
func enroll(t testing.TB, l *local, project string) string {
	t.Helper()
	code, out, errOut := l.cli(t, "", l.asAdmin("projects", "create", project)...)
	key := regexp.MustCompile(`wdn_e_\S+`).FindString(out)
	if code != 0 || key == "" {
		t.Fatalf("projects create: %d %s %s", code, out, errOut)
	}
	return key
}

// auditRecords returns the whole trail of l.
func auditRecords(t testing.TB, l *local) []audit.Record {
	t.Helper()
	code, out, errOut := l.cli(t, "", l.asAdmin("audit", "tail", "-n", "1000", "--format", "json")...)
	if code != 0 {
		t.Fatalf("audit tail: %s", errOut)
	}
	var recs []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// findDecision returns the decision record for a command, or fails.
func findDecision(t *testing.T, recs []audit.Record, resource string) audit.Record {
	t.Helper()
	for _, r := range recs {
		if strings.HasPrefix(string(r.Code), "decision.") && r.Resource == resource {
			return r
		}
	}
	t.Fatalf("no decision recorded for %q", resource)
	return audit.Record{}
}

// clientSetup configures a client through `warden agent setup` and returns
// a function that runs it (again and again, with the same configuration).
type clientSetup func(t *testing.T, l *local, key string) func(stub *e2e.ModelStub, dir string) e2e.Result

// client is a real client under test, with what it tells the model when
// Warden refuses a hook call outright (a killed session, Warden down).
type client struct {
	setup                clientSetup
	killedSays, downSays string
}

// Claude Code does not show an http hook's error body, only that the hook
// failed and blocked; Codex passes on what `warden hook` printed.
var clients = map[string]client{
	"claude": {claudeSetup, `failed; blocking because onFailure is "block"`, `failed; blocking because onFailure is "block"`},
	"codex":  {codexSetup, "was killed by admin", "is unreachable"},
}

func claudeSetup(t *testing.T, l *local, key string) func(*e2e.ModelStub, string) e2e.Result {
	path := filepath.Join(t.TempDir(), "settings.json")
	code, _, errOut := l.cli(t, "", "agent", "setup", "claude", "--enroll-key", key, "--agent", "claude-code", "--path", path, "--llm-gateway=false", "--approval-wait", "0s")
	if code != 0 {
		t.Fatalf("agent setup claude: %s", errOut)
	}
	settings, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return func(stub *e2e.ModelStub, dir string) e2e.Result {
		return e2e.RunClaude(t, e2e.ClaudeOptions{BaseURL: stub.URL(), Dir: dir, Settings: string(settings)})
	}
}

func codexSetup(t *testing.T, l *local, key string) func(*e2e.ModelStub, string) e2e.Result {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "requirements.toml")
	code, _, errOut := l.cli(t, "", "agent", "setup", "codex", "--enroll-key", key, "--agent", "codex", "--path", path, "--warden", self, "--llm-gateway=false", "--approval-wait", "0s")
	if code != 0 {
		t.Fatalf("agent setup codex: %s", errOut)
	}
	// Managed requirements live in /etc, which tests do not write: run the
	// same hooks from config.toml, trusted as Codex's own review would.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	commands := regexp.MustCompile(`(?m)^command = (".*")$`).FindAllStringSubmatch(string(data), -1)
	if len(commands) != 2 {
		t.Fatalf("requirements.toml has %d hook commands:\n%s", len(commands), data)
	}
	var hooks []e2e.CodexHook
	for i, event := range []string{"PreToolUse", "PostToolUse"} {
		var command string
		if err := json.Unmarshal([]byte(commands[i][1]), &command); err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, e2e.CodexHook{Event: event, Command: command, TimeoutSec: 30})
	}
	return func(stub *e2e.ModelStub, dir string) e2e.Result {
		return e2e.RunCodex(t, e2e.CodexOptions{BaseURL: stub.URL(), Dir: dir, Hooks: hooks, Env: []string{runAsCLIEnv + "=1"}})
	}
}

// push runs one scripted session that pushes branch, and reports whether
// the branch reached the remote.
func push(t *testing.T, runClient func(*e2e.ModelStub, string) e2e.Result, bare, work, branch string) (bool, *e2e.ModelStub) {
	t.Helper()
	if out, err := exec.Command("git", "-C", work, "branch", branch).CombinedOutput(); err != nil {
		t.Fatalf("git branch %s: %v\n%s", branch, err, out)
	}
	stub := e2e.NewModelStub(t, []e2e.Step{e2e.Bash("git push origin " + branch), e2e.Say("done")})
	res := runClient(stub, work)
	if res.ExitCode != 0 {
		t.Logf("client exited %d\nstdout:\n%s\nstderr:\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	return e2e.RemoteRef(t, bare, "refs/heads/"+branch) != "", stub
}

func TestRealClients(t *testing.T) {
	e2e.Clients(t) // install once, before the parallel runs
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := startServe(t)
			runClient := c.setup(t, l, enroll(t, l, "project-a"))
			bare, work := e2e.GitRemote(t)
			mainBefore := e2e.RemoteRef(t, bare, "refs/heads/main")

			stub := e2e.NewModelStub(t, []e2e.Step{
				e2e.Bash("git push origin main"),
				e2e.Bash("git push origin feature/x"),
				e2e.Say("done"),
			})
			res := runClient(stub, work)
			if res.ExitCode != 0 {
				t.Fatalf("%s exited %d\nstdout:\n%s\nstderr:\n%s", name, res.ExitCode, res.Stdout, res.Stderr)
			}
			if got := e2e.RemoteRef(t, bare, "refs/heads/main"); got != mainBefore {
				t.Errorf("main reached the remote (%s → %s)", mainBefore, got)
			}
			if e2e.RemoteRef(t, bare, "refs/heads/feature/x") == "" {
				t.Errorf("feature/x did not land\nstdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
			}
			results := stub.ToolResults()
			if len(results) != 2 || !strings.Contains(results[0].Output, "approval pending: APR-") || !strings.Contains(results[0].Output, "waiting on ops-slack") {
				t.Errorf("the model was not told why main was refused: %+v", results)
			}

			recs := auditRecords(t, l)
			main := findDecision(t, recs, "git push origin main")
			if main.Code != audit.DecisionApproval || main.Rule != "risky-shell-needs-approval" || main.ClientSession == "" {
				t.Errorf("main decision: %+v", main)
			}
			feature := findDecision(t, recs, "git push origin feature/x")
			if feature.Code != audit.DecisionAllow || feature.Rule != "shell" {
				t.Errorf("feature decision: %+v", feature)
			}
			outcome := false
			for _, r := range recs {
				if r.Code == audit.ToolOutcome && r.Ref == feature.Ref && r.Ref != "" {
					outcome = true
				}
			}
			if !outcome {
				t.Errorf("no outcome recorded for the feature push (ref %q)", feature.Ref)
			}

			// The same helper pushes when nothing stops it.
			if landed, stub := push(t, runClient, bare, work, "feature/again"); !landed {
				t.Fatalf("an allowed push did not land; tool results %+v", stub.ToolResults())
			}

			// The kill switch: the session's next tool call is refused.
			code, out, _ := l.cli(t, "", l.asAdmin("sessions", "list", "--project", "project-a")...)
			ids := regexp.MustCompile(`(?m)^([0-9a-f]{24})\s`).FindAllStringSubmatch(out, -1)
			if code != 0 || len(ids) != 1 {
				t.Fatalf("sessions list:\n%s", out)
			}
			if code, _, errOut := l.cli(t, "", l.asAdmin("sessions", "kill", ids[0][1], "--reason", "e2e kill switch")...); code != 0 {
				t.Fatalf("sessions kill: %s", errOut)
			}
			if landed, stub := push(t, runClient, bare, work, "feature/killed"); landed || !toolSaid(stub, c.killedSays) {
				t.Errorf("a killed session's push: landed %v, tool results %+v", landed, stub.ToolResults())
			}
			refused := false
			for _, r := range auditRecords(t, l) {
				if r.Code == audit.RequestRefused && r.Session == ids[0][1] && strings.Contains(r.Reason, "e2e kill switch") {
					refused = true
				}
			}
			if !refused {
				t.Error("the refused call of the killed session is not in the audit trail")
			}

			// With Warden stopped, tool calls are blocked, not allowed.
			if err := l.stop(); err != nil {
				t.Fatal(err)
			}
			if landed, stub := push(t, runClient, bare, work, "feature/down"); landed || !toolSaid(stub, c.downSays) {
				t.Errorf("a push while Warden was down: landed %v, tool results %+v", landed, stub.ToolResults())
			}
		})
	}
}

// toolSaid reports whether the client told the model text about the call.
func toolSaid(stub *e2e.ModelStub, text string) bool {
	results := stub.ToolResults()
	return len(results) == 1 && strings.Contains(results[0].Output, text)
}
