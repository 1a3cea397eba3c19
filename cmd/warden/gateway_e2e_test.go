package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenhq/warden/policy/examples"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/e2e"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/notify/notifytest"
	"github.com/wardenhq/warden/shared/pricing"
	"github.com/wardenhq/warden/shared/server"
)

// The real Claude Code and Codex send their model calls through Warden's
// gateway to a scripted stand-in of the providers; Warden holds the
// provider key, decides each call, meters it and records it.

const e2eProviderKey = "sk-e2e-provider-key-held-by-warden"

// gatewayClient runs a client with its model calls through Warden.
type gatewayClient struct {
	model string
	run   func(t *testing.T, l *local, key string) func(stub *e2e.ModelStub, dir string) e2e.Result
}

var gatewayClients = map[string]gatewayClient{
	"claude": {"claude-sonnet-4-5", func(t *testing.T, l *local, key string) func(*e2e.ModelStub, string) e2e.Result {
		path := filepath.Join(t.TempDir(), "settings.json")
		if code, _, errOut := l.cli(t, "", "agent", "setup", "claude", "--enroll-key", key, "--agent", "claude-code", "--path", path); code != 0 {
			t.Fatalf("agent setup claude: %s", errOut)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var settings struct{ Env map[string]string }
		if err := json.Unmarshal(data, &settings); err != nil {
			t.Fatal(err)
		}
		// What setup wrote is what the client uses: the gateway's URL and
		// the session token as its API key.
		base, token := settings.Env["ANTHROPIC_BASE_URL"], settings.Env["ANTHROPIC_AUTH_TOKEN"]
		if base != l.endpoint || !strings.HasPrefix(token, "wdn_s_") {
			t.Fatalf("settings env: %v", settings.Env)
		}
		return func(stub *e2e.ModelStub, dir string) e2e.Result {
			return e2e.RunClaude(t, e2e.ClaudeOptions{BaseURL: base, Token: token, Dir: dir, Settings: string(data),
				Args: []string{"--model", "claude-sonnet-4-5"}, Env: []string{"CLAUDE_CODE_MAX_RETRIES=2"}})
		}
	}},
	"codex": {"gpt-5.1-codex", func(t *testing.T, l *local, key string) func(*e2e.ModelStub, string) e2e.Result {
		path := filepath.Join(t.TempDir(), "config.toml")
		if code, _, errOut := l.cli(t, "", "agent", "setup", "codex", "--enroll-key", key, "--agent", "codex-gw", "--path", filepath.Join(t.TempDir(), "requirements.toml"),
			"--codex-config", path, "--warden", selfBinary(t)); code != 0 {
			t.Fatalf("agent setup codex: %s", errOut)
		}
		config, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^base_url = "([^"]+)"$`).FindStringSubmatch(string(config))
		tok := regexp.MustCompile(`(?m)^experimental_bearer_token = "(wdn_s_[0-9a-f_]+)"$`).FindStringSubmatch(string(config))
		if m == nil || m[1] != l.endpoint+"/v1" || tok == nil {
			t.Fatalf("codex config:\n%s", config)
		}
		return func(stub *e2e.ModelStub, dir string) e2e.Result {
			return e2e.RunCodex(t, e2e.CodexOptions{BaseURL: l.endpoint, Token: tok[1], Dir: dir, Model: "gpt-5.1-codex",
				Env: []string{runAsCLIEnv + "=1"}})
		}
	}},
}

func selfBinary(t testing.TB) string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self
}

// gatewayServe starts warden serve with both providers routed to the
// upstream at the base URL upstream.
func gatewayServe(t testing.TB, upstream string, policyYAML string, opts ...func(*serveConfig)) *local {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "llm.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`upstreams:
  anthropic: {api: anthropic, url: %q, key_env: E2E_PROVIDER_KEY}
  openai: {api: openai, url: %q, key_env: E2E_PROVIDER_KEY}
routes:
  - {model: "claude-*", upstream: anthropic}
  - {model: "*", upstream: openai}
`, upstream, upstream)), 0o600); err != nil {
		t.Fatal(err)
	}
	l := startServe(t, append([]func(*serveConfig){func(c *serveConfig) {
		c.llmConfig = conf
		c.getenv = func(k string) string {
			if k == "E2E_PROVIDER_KEY" {
				return e2eProviderKey
			}
			return ""
		}
	}}, opts...)...)
	if policyYAML != "" {
		writePolicy(t, l.policyFile, policyYAML)
		waitFor(t, func() bool {
			for _, r := range auditRecords(t, l) {
				if r.Code == audit.PolicyLoaded {
					return true
				}
			}
			return false
		})
	}
	return l
}

// usages returns the llm.usage records and their Usage.
func usages(t *testing.T, recs []audit.Record) ([]audit.Record, []audit.Usage) {
	var rs []audit.Record
	var us []audit.Usage
	for _, r := range recs {
		if r.Code == audit.LLMUsage {
			var u audit.Usage
			if err := json.Unmarshal(r.Args, &u); err != nil {
				t.Fatal(err)
			}
			rs, us = append(rs, r), append(us, u)
		}
	}
	return rs, us
}

func TestRealClientsThroughGateway(t *testing.T) {
	e2e.Clients(t)
	for name, c := range gatewayClients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stub := e2e.NewModelStub(t, []e2e.Step{e2e.Bash("git push origin feature/gw"), e2e.Say("done")})
			l := gatewayServe(t, stub.URL(), "")
			runClient := c.run(t, l, enroll(t, l, "project-a"))
			bare, work := e2e.GitRemote(t)
			if out, err := exec.Command("git", "-C", work, "branch", "feature/gw").CombinedOutput(); err != nil {
				t.Fatalf("git branch: %v %s", err, out)
			}
			res := runClient(stub, work)
			if res.ExitCode != 0 {
				t.Fatalf("%s exited %d\nstdout:\n%s\nstderr:\n%s", name, res.ExitCode, res.Stdout, res.Stderr)
			}
			if e2e.RemoteRef(t, bare, "refs/heads/feature/gw") == "" {
				t.Errorf("the scripted push did not land")
			}

			// Upstream saw the provider key, never the Warden token.
			for _, r := range stub.Requests() {
				auth := r.Header.Get("X-Api-Key") + r.Header.Get("Authorization")
				if !strings.Contains(auth, e2eProviderKey) || strings.Contains(auth, "wdn_") {
					t.Errorf("%s %s reached the provider with credentials %q", r.Method, r.Path, auth)
				}
			}
			served := stub.ModelCalls()
			// Each model call is decided, then its usage recorded with the
			// exact tokens the provider reported and their price.
			recs := auditRecords(t, l)
			rs, us := usages(t, recs)
			if len(served) == 0 || len(us) != len(served) {
				t.Fatalf("%d model calls served, %d usage records", len(served), len(us))
			}
			price, ok := pricing.Default().Lookup(map[string]string{"claude": "anthropic", "codex": "openai"}[name], c.model)
			if !ok {
				t.Fatalf("no price for %s", c.model)
			}
			var total pricing.Money
			for i, u := range us {
				su := served[i].Usage
				want := pricing.Tokens{Input: int64(su.InputTokens), CacheRead: int64(su.CacheReadInputTokens),
					CacheWrite5m: int64(su.CacheCreationInputTokens), Output: int64(su.OutputTokens)}
				got := pricing.Tokens{Input: u.InputTokens, CacheRead: u.CacheReadTokens, CacheWrite5m: u.CacheWrite5mTokens,
					CacheWrite1h: u.CacheWrite1hTokens, Output: u.OutputTokens}
				if name == "codex" { // OpenAI reports no cache writes: they are input there
					want.Input += want.CacheWrite5m
					want.CacheWrite5m = 0
				}
				if got != want || u.Estimated || rs[i].Status != "ok" {
					t.Errorf("call %d: recorded %+v (%s, estimated %v), the provider reported %+v", i, got, rs[i].Status, u.Estimated, want)
				}
				if cost := price.Cost(want); u.CostUSD != cost.Decimal() || cost == 0 {
					t.Errorf("call %d: cost %s, want %s", i, u.CostUSD, cost.Decimal())
				}
				total += price.Cost(want)
			}
			decisions := 0
			for _, r := range recs {
				if r.Code == audit.DecisionAllow && r.Action == "llm:invoke" && r.Rule == "current-claude-and-gpt-models" && r.ClientSession != "" {
					decisions++
				}
			}
			if decisions != len(served) {
				t.Errorf("%d llm:invoke decisions with the client's session for %d calls", decisions, len(served))
			}
			// The budgets saw the same spend.
			code, out, errOut := l.cli(t, "", l.asAdmin("budgets", rs[0].Session, "--format", "json")...)
			var views []server.BudgetView
			if code != 0 || json.Unmarshal([]byte(out), &views) != nil {
				t.Fatalf("budgets: exit %d %s %s", code, out, errOut)
			}
			for _, v := range views {
				if v.Budget == "project-daily-usd" && (v.SpentUSD != total.Decimal() || v.HeldUSD != pricing.Money(0).Decimal()) {
					t.Errorf("project budget: spent %s held %s, the calls cost %s", v.SpentUSD, v.HeldUSD, total.Decimal())
				}
			}
			if code, out, _ := l.cli(t, "", l.asAdmin("budgets", rs[0].Session)...); code != 0 || !strings.Contains(out, "project-daily-usd") {
				t.Errorf("budgets table:\n%s", out)
			} else {
				t.Logf("warden budgets:\n%s", out)
			}
			t.Logf("%s: %d model calls, %s", name, len(served), total)
		})
	}
}

// TestBudgetStopsRealClients: mid-session, the project's budget is cut
// below what it has spent (the scripted command swaps the policy file,
// which Warden reloads); the client's next model call is refused, the
// client stops and shows why, and no further call reaches the provider.
func TestBudgetStopsRealClients(t *testing.T) {
	e2e.Clients(t)
	for name, c := range gatewayClients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tight := filepath.Join(t.TempDir(), "tight.yaml")
			if err := os.WriteFile(tight, []byte(strings.Replace(string(examples.Policy), "usd: 50", "usd: 0.001", 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			var l *local
			stub := e2e.NewModelStub(t, nil) // the script needs the policy path, known once serve runs
			l = gatewayServe(t, stub.URL(), "")
			stub.SetScript(t, []e2e.Step{e2e.Bash(fmt.Sprintf("cp %s %s && sleep 1", tight, l.policyFile)), e2e.Say("done")})
			runClient := c.run(t, l, enroll(t, l, "project-a"))
			res := runClient(stub, t.TempDir())

			want := "budget project-daily-usd exhausted for project project-a"
			if !strings.Contains(res.Stdout+res.Stderr, want) {
				t.Errorf("%s did not show the budget refusal (exit %d)\nstdout:\n%s\nstderr:\n%s", name, res.ExitCode, res.Stdout, res.Stderr)
			}
			for _, line := range strings.Split(res.Stdout+res.Stderr, "\n") {
				if strings.Contains(line, want) {
					t.Logf("%s showed (exit %d): %.300s", name, res.ExitCode, line)
					break
				}
			}
			if res.ExitCode == 0 && name == "claude" {
				t.Errorf("claude went on after the refusal")
			}
			recs := auditRecords(t, l)
			refused := 0
			for _, r := range recs {
				if r.Code == audit.DecisionDeny && r.Action == "llm:invoke" && strings.Contains(r.Reason, want) {
					refused++
				}
			}
			served := len(stub.ModelCalls())
			// One call ran the command; the next was refused; none after.
			if served != 1 || refused < 1 || refused > 2 {
				t.Errorf("%d calls reached the provider, %d refused for the budget", served, refused)
			}
		})
	}
}

const watchdogPolicy = `version: 1
rules:
  - {id: models, effect: allow, action: llm:invoke, resource: ["anthropic/claude-sonnet-4-*", "openai/gpt-5*"]}
  - {id: tools, effect: allow, action: "tool:*"}
watchdog:
  upstream_errors: {alert: 10, pause: 20}
  notify: [ops-slack]
notifications:
  ops-slack: {type: slack, channel: C0123ABCDE, secret: slack-bot-token}
`

// TestWatchdogStopsALoop is the classic runaway: the provider answers
// every call with 429 and the client keeps retrying. Warden alerts the
// team's Slack channel at the 10th error in a row and pauses the session
// at the 20th; the next call is refused with the reason, and the client
// stops and shows it.
func TestWatchdogStopsALoop(t *testing.T) {
	e2e.Clients(t)
	for name, c := range gatewayClients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			slack := notifytest.NewSlack(t)
			stub := e2e.NewModelStub(t, []e2e.Step{e2e.Say("never said")})
			stub.Overload(http.StatusTooManyRequests)
			l := gatewayServe(t, stub.URL(), watchdogPolicy, func(c *serveConfig) {
				c.notify.SlackAPIURL = slack.GetAPIURL()
				c.notify.Secrets = notify.EnvSecrets{LookupEnv: func(k string) (string, bool) {
					return "xoxb-e2e-bot-token", k == notify.EnvName("slack-bot-token")
				}}
			})
			runClient := c.run(t, l, enroll(t, l, "project-a"))
			var res e2e.Result
			for run := 0; run < 25; run++ { // Claude Code retries within a run; Codex's harness allows one retry a run
				res = runClient(stub, t.TempDir())
				if strings.Contains(res.Stdout+res.Stderr, "was paused by watchdog") {
					break
				}
			}
			if !strings.Contains(res.Stdout+res.Stderr, "was paused by watchdog") {
				t.Fatalf("%s never showed the pause\nstdout:\n%s\nstderr:\n%s", name, res.Stdout, res.Stderr)
			}
			reached := len(stub.ModelCalls())
			if reached != 20 {
				t.Errorf("%d calls reached the provider; the session should pause at the 20th", reached)
			}
			var alerts, pauses []audit.Record
			for _, r := range auditRecords(t, l) {
				switch r.Code {
				case audit.WatchdogAlert:
					alerts = append(alerts, r)
				case audit.WatchdogPaused:
					pauses = append(pauses, r)
				}
			}
			if len(alerts) != 1 || len(pauses) != 1 || !strings.Contains(alerts[0].Reason, "10 upstream errors in a row") {
				t.Fatalf("watchdog records: alerts %+v, pauses %+v", alerts, pauses)
			}
			waitFor(t, func() bool { return len(slack.Calls()) == 2 })
			p := slack.Calls()
			if p[0].Channel != "C0123ABCDE" || !strings.Contains(p[0].Text, "10 upstream errors in a row") || !strings.Contains(p[1].Text, "paused") ||
				!strings.Contains(p[0].Token, "xoxb-e2e-bot-token") {
				t.Errorf("Slack got %+v", p)
			}
			t.Logf("%s showed: %.200s", name, lineWith(res.Stdout+res.Stderr, "was paused by watchdog"))

			// A human resumes the session; the watchdog starts afresh.
			sess := pauses[0].Session
			if code, _, e := l.cli(t, "", l.asAdmin("sessions", "resume", sess)...); code != 0 {
				t.Fatalf("resume: %s", e)
			}
		})
	}
}

func lineWith(s, sub string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

// TestRateLimitShownByRealClients: the session's second model call within
// the minute is over the policy's rate limit. Claude Code gets a 429 that
// says not to retry and prints the reason; Codex, which hides a 429's
// message, gets a 403 and prints it.
func TestRateLimitShownByRealClients(t *testing.T) {
	e2e.Clients(t)
	for name, c := range gatewayClients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stub := e2e.NewModelStub(t, []e2e.Step{e2e.Bash("true"), e2e.Say("done")})
			pol := strings.Replace(string(examples.Policy), "requests: 120\n    per: 1m", "requests: 1\n    per: 1m", 1)
			l := gatewayServe(t, stub.URL(), pol)
			res := c.run(t, l, enroll(t, l, "project-a"))(stub, t.TempDir())
			want := "rate limit llm-per-session for session"
			if !strings.Contains(res.Stdout+res.Stderr, want) {
				t.Fatalf("%s did not show the rate limit (exit %d)\nstdout:\n%s\nstderr:\n%s", name, res.ExitCode, res.Stdout, res.Stderr)
			}
			t.Logf("%s showed (exit %d): %.300s", name, res.ExitCode, lineWith(res.Stdout+res.Stderr, want))
			reached := len(stub.ModelCalls())
			if reached != 1 {
				t.Errorf("%d calls reached the provider, want 1", reached)
			}
		})
	}
}
