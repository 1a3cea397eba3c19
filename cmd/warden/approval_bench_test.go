package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/wardenhq/warden/shared/secret"
	"github.com/wardenhq/warden/shared/slackapp"
)

// BenchmarkApproval is a push to main that needs approval, through
// `warden serve` with Slack (slack-go's stand-in), each time: the hook
// asks and waits; the approval is posted to Slack; a release manager's
// signed click arrives; the hook lets the push run. It reports the time
// from the hook's call to the Slack message posted (post-ms; the aim is
// 200 ms from the decision) and from the click to the hook unblocked
// (unblock-ms; the aim is 500 ms), averaged. Run it with a fixed count:
// -bench Approval -benchtime 20x.
func BenchmarkApproval(b *testing.B) {
	posted := make(chan string, 1)
	api := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			posted <- r.FormValue("blocks")
			w.Write([]byte(`{"ok":true,"channel":"C0123ABCDE","ts":"1772366400.000100"}`))
		})
		// Each decision updates the message.
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"ok":true,"channel":"C0123ABCDE","ts":"1772366400.000100"}`))
		})
	})
	api.Start()
	b.Cleanup(api.Stop)
	responses := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b.Cleanup(responses.Close)
	l := startServe(b, func(c *serveConfig) {
		c.notify.SlackAPIURL = api.GetAPIURL()
		c.notify.Secrets = secret.Map{"warden/slack-bot-token": "xoxb-bench", slackapp.BotToken: "xoxb-bench", slackapp.SigningSecret: e2eSigningSecret}
	})
	key := enroll(b, l, "project-a")
	code, out, errOut := l.cli(b, "", "agent", "login", "--enroll-key", key, "--agent", "claude-code", "--format", "json")
	var sess struct{ Token string }
	if code != 0 || json.Unmarshal([]byte(out), &sess) != nil || sess.Token == "" {
		b.Fatalf("agent login: %d %s %s", code, out, errOut)
	}
	idRE := regexp.MustCompile(`APR-[A-Z2-7]{16}`)
	var toPost, toUnblock time.Duration
	for i := 0; b.Loop(); i++ {
		// Another directory each time: the example policy's watchdog
		// would pause a session repeating one request.
		command := fmt.Sprintf("cd /workspace/%d && git push origin main", i)
		start := time.Now()
		done := make(chan string, 1)
		go func() {
			code, _, errOut := l.cli(b, hookInput(command), "hook", "--token", sess.Token, "--approval-wait", "20s")
			if code != 0 {
				done <- strings.TrimSpace(errOut)
				return
			}
			done <- ""
		}()
		var id string
		for id == "" {
			select {
			case blocks := <-posted:
				if id = idRE.FindString(blocks); id != "" {
					toPost += time.Since(start)
				}
			case <-time.After(10 * time.Second):
				b.Fatal("no approval posted to Slack")
			}
		}
		clicked := time.Now()
		if code := slackClick(b, l.endpoint, "U012AB3CD", id, responses.URL); code != http.StatusOK {
			b.Fatalf("the click answered %d", code)
		}
		if msg := <-done; msg != "" {
			b.Fatalf("the hook: %s", msg)
		}
		toUnblock += time.Since(clicked)
	}
	b.ReportMetric(float64(toPost)/float64(b.N)/1e6, "post-ms")
	b.ReportMetric(float64(toUnblock)/float64(b.N)/1e6, "unblock-ms")
}
