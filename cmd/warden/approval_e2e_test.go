package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/e2e"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/notify/notifytest"
	"github.com/wardenhq/warden/shared/secret"
	"github.com/wardenhq/warden/shared/slackapp"
)

const e2eSigningSecret = "e2e-slack-signing-secret-0123456789"

// TestApprovalRealClaude: the real Claude Code pushes to main, which the
// example policy sends to the release managers; the approval is posted to
// Slack (slack-go's stand-in) with its buttons; while Claude Code's hook
// waits, a release manager's click arrives signed as Slack signs it; the
// push lands in the bare remote, and the audit trail holds the request,
// the approval and the result, in that order.
func TestApprovalRealClaude(t *testing.T) {
	e2e.Clients(t)
	api := notifytest.NewSlack(t)
	responses := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(responses.Close)
	l := startServe(t, slackConfig(api))
	path := filepath.Join(t.TempDir(), "settings.json")
	if code, _, errOut := l.cli(t, "", "agent", "setup", "claude", "--enroll-key", enroll(t, l, "project-a"), "--agent", "claude-code",
		"--path", path, "--llm-gateway=false"); code != 0 {
		t.Fatalf("agent setup claude: %s", errOut)
	}
	settings, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(settings), "pre-tool-use?wait=23s") {
		t.Fatalf("settings %s, %v", settings, err)
	}
	bare, work := e2e.GitRemote(t)
	before := e2e.RemoteRef(t, bare, "refs/heads/main")
	stub := e2e.NewModelStub(t, []e2e.Step{e2e.Bash("git push origin main"), e2e.Say("done")})

	ran := make(chan e2e.Result, 1)
	go func() {
		ran <- e2e.RunClaude(t, e2e.ClaudeOptions{BaseURL: stub.URL(), Dir: work, Settings: string(settings)})
	}()

	// The approval, once Claude Code's hook waits on it, and its message.
	var a approval.Approval
	for deadline := time.Now().Add(20 * time.Second); a.ID == ""; {
		var list []approval.Approval
		apiCall(http.DefaultClient, "GET", l.endpoint+"/v1/admin/approvals?state=pending", l.admin, nil, &list)
		if len(list) == 1 {
			a = list[0]
		} else if time.Now().After(deadline) {
			t.Fatal("no approval opened")
		}
		time.Sleep(20 * time.Millisecond)
	}
	post := api.Next(t, "post")
	if !strings.Contains(post.Blocks, approval.ActionApprove) || !strings.Contains(post.Blocks, a.ID) {
		t.Errorf("the Slack message has no Approve button for %s: %s", a.ID, post.Blocks)
	}
	t.Logf("approval opened to its Slack message posted: %v", post.At.Sub(a.Created).Round(time.Millisecond))

	clicked := time.Now()
	if code := slackClick(t, l.endpoint, "U012AB3CD", a.ID, responses.URL); code != http.StatusOK {
		t.Fatalf("the signed click answered %d", code)
	}
	res := <-ran
	t.Logf("click to Claude Code's push done: %v", time.Since(clicked).Round(time.Millisecond))
	if res.ExitCode != 0 {
		t.Fatalf("claude exited %d\nstdout:\n%s\nstderr:\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	if after := e2e.RemoteRef(t, bare, "refs/heads/main"); after == before {
		t.Errorf("main did not land once approved\nstdout:\n%s", res.Stdout)
	}

	api.Updated(t, post, "Approved once by U012AB3CD via slack channel C0123ABCDE")

	var got []string
	for _, r := range auditRecords(t, l) {
		switch {
		case r.Ref == a.ID:
			got = append(got, string(r.Code)+" "+r.Actor)
		case r.Resource == "git push origin main":
			got = append(got, string(r.Code))
		}
	}
	want := []string{string(audit.ApprovalRequested) + " ", string(audit.DecisionApproval), string(audit.ApprovalApproved) + " U012AB3CD",
		string(audit.DecisionAllow), string(audit.ToolOutcome)}
	if !slices.Equal(got, want) {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestApprovalRealClaudeDefer: Claude Code in -p mode, set up to defer a
// call still waiting for approval, ends its run with the push deferred;
// approved meanwhile, the resumed session asks again for the same call,
// which passes once, and the push lands.
func TestApprovalRealClaudeDefer(t *testing.T) {
	e2e.Clients(t)
	api := notifytest.NewSlack(t)
	l := startServe(t, slackConfig(api))
	path := filepath.Join(t.TempDir(), "settings.json")
	if code, _, errOut := l.cli(t, "", "agent", "setup", "claude", "--enroll-key", enroll(t, l, "project-a"), "--agent", "claude-code",
		"--path", path, "--llm-gateway=false", "--approval-wait", "0s", "--on-pending", "defer"); code != 0 {
		t.Fatalf("agent setup claude: %s", errOut)
	}
	settings, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(settings), "pre-tool-use?pending=defer") {
		t.Fatalf("settings %s, %v", settings, err)
	}
	bare, work := e2e.GitRemote(t)
	before := e2e.RemoteRef(t, bare, "refs/heads/main")
	stub := e2e.NewModelStub(t, []e2e.Step{e2e.Bash("git push origin main"), e2e.Say("pushed")})

	first := e2e.RunClaude(t, e2e.ClaudeOptions{BaseURL: stub.URL(), Dir: work, Settings: string(settings)})
	var out struct {
		TerminalReason  string               `json:"terminal_reason"`
		SessionID       string               `json:"session_id"`
		DeferredToolUse *struct{ ID string } `json:"deferred_tool_use"`
	}
	if err := json.Unmarshal([]byte(first.Stdout), &out); err != nil || out.TerminalReason != "tool_deferred" || out.SessionID == "" || out.DeferredToolUse == nil {
		t.Fatalf("first run: exit %d, %v\nstdout:\n%s\nstderr:\n%s", first.ExitCode, err, first.Stdout, first.Stderr)
	}
	if after := e2e.RemoteRef(t, bare, "refs/heads/main"); after != before {
		t.Fatal("main moved before the approval")
	}
	id := regexp.MustCompile(`APR-[A-Z2-7]{16}`).FindString(api.Next(t, "post").Blocks)
	if code, _, errOut := l.cli(t, "", l.asAdmin("approvals", "approve", id)...); code != 0 {
		t.Fatalf("approvals approve %q: %s", id, errOut)
	}

	second := e2e.RunClaude(t, e2e.ClaudeOptions{BaseURL: stub.URL(), Dir: work, Settings: string(settings), Home: first.Home,
		Args: []string{"--resume", out.SessionID}})
	if second.ExitCode != 0 {
		t.Fatalf("resumed run: exit %d\nstdout:\n%s\nstderr:\n%s", second.ExitCode, second.Stdout, second.Stderr)
	}
	if after := e2e.RemoteRef(t, bare, "refs/heads/main"); after == before {
		t.Errorf("main did not land once approved and resumed\nstdout:\n%s", second.Stdout)
	}
	var got []string
	for _, r := range auditRecords(t, l) {
		if r.Resource == "git push origin main" || r.Ref == id {
			got = append(got, string(r.Code))
		}
	}
	want := []string{string(audit.ApprovalRequested), string(audit.DecisionApproval), string(audit.ApprovalApproved),
		string(audit.DecisionAllow), string(audit.ToolOutcome)}
	if !slices.Equal(got, want) {
		t.Errorf("audit %q, want %q", got, want)
	}
}

// TestApprovalMessageUpdated: an approval decided from the command line,
// or cancelled with its session, has its Slack message updated with the
// outcome and who decided, its buttons gone.
func TestApprovalMessageUpdated(t *testing.T) {
	api := notifytest.NewSlack(t)
	l := startServe(t, slackConfig(api))
	key := enroll(t, l, "project-a")
	code, out, errOut := l.cli(t, "", "agent", "login", "--enroll-key", key, "--agent", "claude-code", "--format", "json")
	var sess struct{ ID, Token string }
	if code != 0 || json.Unmarshal([]byte(out), &sess) != nil || sess.Token == "" {
		t.Fatalf("agent login: %d %s %s", code, out, errOut)
	}
	ask := func(command string) string {
		_, _, errOut := l.cli(t, hookInput(command), "hook", "--token", sess.Token, "--approval-wait", "0s")
		id := regexp.MustCompile(`APR-[A-Z2-7]{16}`).FindString(errOut)
		if id == "" {
			t.Fatalf("%s: no approval pending: %s", command, errOut)
		}
		return id
	}

	id := ask("git push origin main")
	post := api.Next(t, "post")
	if !strings.Contains(post.Blocks, id) || !strings.Contains(post.Blocks, approval.ActionDeny) {
		t.Fatalf("the message of %s: %s", id, post.Blocks)
	}
	if code, _, errOut := l.cli(t, "", l.asAdmin("approvals", "deny", id, "--note", "freeze until Monday")...); code != 0 {
		t.Fatalf("approvals deny: %s", errOut)
	}
	api.Updated(t, post, "Denied by admin:admin via 127.0.0.1")

	id = ask("cd /workspace/other && git push origin main")
	post = api.Next(t, "post")
	if code, _, errOut := l.cli(t, "", l.asAdmin("approvals", "cancel", id, "--reason", "wrong branch")...); code != 0 {
		t.Fatalf("approvals cancel: %s", errOut)
	}
	api.Updated(t, post, "Cancelled by admin")
}

// slackConfig points warden serve at Slack's stand-in, with the Slack
// app's secrets.
func slackConfig(api *notifytest.Slack) func(*serveConfig) {
	return func(c *serveConfig) {
		c.notify.SlackAPIURL = api.GetAPIURL()
		c.notify.Secrets = secret.Map{"warden/slack-bot-token": "xoxb-e2e", slackapp.BotToken: "xoxb-e2e", slackapp.SigningSecret: e2eSigningSecret}
	}
}

// slackClick sends a release manager's click on Approve, signed as Slack
// signs it.
func slackClick(t testing.TB, endpoint, user, id, responseURL string) int {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]string{"id": user}, "channel": map[string]string{"id": "C0123ABCDE"},
		"response_url": responseURL,
		"actions":      []map[string]string{{"action_id": approval.ActionApprove, "value": id, "block_id": notify.ActionsBlockID, "type": "button"}},
	})
	body := "payload=" + url.QueryEscape(string(payload))
	stamp := fmt.Sprint(time.Now().Unix())
	mac := hmac.New(sha256.New, []byte(e2eSigningSecret))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
	req, err := http.NewRequest("POST", endpoint+"/v1/slack/interactivity", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
