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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/e2e"
	"github.com/wardenhq/warden/shared/notify"
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
	posted := make(chan string, 4)
	var postedAt time.Time
	api := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			postedAt = time.Now()
			posted <- r.FormValue("blocks")
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1772366400.000100"}`, r.FormValue("channel"))
		})
	})
	api.Start()
	t.Cleanup(api.Stop)
	responses := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(responses.Close)
	l := startServe(t, func(c *serveConfig) {
		c.notify.SlackAPIURL = api.GetAPIURL()
		c.notify.Secrets = secret.Map{"warden/slack-bot-token": "xoxb-e2e", slackapp.BotToken: "xoxb-e2e", slackapp.SigningSecret: e2eSigningSecret}
	})
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
	select {
	case blocks := <-posted:
		if !strings.Contains(blocks, approval.ActionApprove) || !strings.Contains(blocks, a.ID) {
			t.Errorf("the Slack message has no Approve button for %s: %s", a.ID, blocks)
		}
		t.Logf("approval opened to its Slack message posted: %v", postedAt.Sub(a.Created).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the approval was not posted to Slack")
	}

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
