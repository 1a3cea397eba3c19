package slackapp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approval/approvaltest"
	"github.com/wardenhq/warden/shared/approvalpost"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/secret"
	"github.com/wardenhq/warden/shared/slackapp/slackevent"
)

const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// replies keeps what the app posted to the clicks' response URLs.
type replies struct {
	mu   sync.Mutex
	msgs []slack.WebhookMessage
	srv  *httptest.Server
}

func (r *replies) last(t *testing.T) slack.WebhookMessage {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.msgs) == 0 {
		t.Fatal("no reply to the click")
	}
	return r.msgs[len(r.msgs)-1]
}

type fixture struct {
	app     *Interactivity
	handler http.Handler
	service *approval.Service
	replies *replies
	a       approval.Approval
}

// newFixture is the app over an approval service with one pending
// approval (a push to main, asked for by approvaltest.Requester), a Slack
// API stand-in whose user group approvaltest.Group has Member and the
// requester, and a server taking the replies.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	api := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/usergroups.users.list", func(w http.ResponseWriter, r *http.Request) {
			users := []string{}
			if r.FormValue("usergroup") == approvaltest.Group {
				users = []string{approvaltest.Member, approvaltest.Requester}
			}
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "users": users})
		})
	})
	api.Start()
	t.Cleanup(api.Stop)
	rep := &replies{}
	rep.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m slack.WebhookMessage
		json.NewDecoder(r.Body).Decode(&m)
		rep.mu.Lock()
		rep.msgs = append(rep.msgs, m)
		rep.mu.Unlock()
	}))
	t.Cleanup(rep.srv.Close)
	s, _, _ := approvaltest.Setup(t, &approval.MemoryStore{})
	s.Now = nil // the real clock: Slack's timestamps are checked against it
	a, _, err := s.Check(context.Background(), approvaltest.Push(t))
	if err != nil {
		t.Fatal(err)
	}
	app := &Interactivity{Approvals: s, Secrets: secret.Map{SigningSecret: signingSecret, BotToken: "xoxb-test"},
		APIURL: api.GetAPIURL(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return &fixture{app: app, handler: app, service: s, replies: rep, a: a}
}

// click is a signed interactivity request of user pressing the button
// action on approval id, signed at ts.
func (f *fixture) click(user, action, id string, ts time.Time, secret string) *http.Request {
	msg := approvalpost.Message(f.a)
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]string{"id": user}, "channel": map[string]string{"id": "C0OPS"},
		"response_url": f.replies.srv.URL + "/hooks/response",
		"message":      map[string]any{"blocks": notify.SlackBlocks(msg)},
		"actions":      []map[string]string{{"action_id": action, "value": id, "block_id": notify.ActionsBlockID, "type": "button"}},
	})
	body := "payload=" + url.QueryEscape(string(payload))
	r := httptest.NewRequest("POST", "/v1/slack/interactivity", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	stamp := fmt.Sprint(ts.Unix())
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
	r.Header.Set("X-Slack-Request-Timestamp", stamp)
	r.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return r
}

func (f *fixture) send(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

func (f *fixture) state(t *testing.T) approval.Approval {
	t.Helper()
	a, err := f.service.Store.Get(context.Background(), f.a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestApproveByClick: a signed click of an approver approves, and the
// message's buttons are replaced with the outcome; the same request again
// is a replay and is refused.
func TestApproveByClick(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	req := f.click(approvaltest.Lead, approval.ActionApprove, f.a.ID, time.Now(), signingSecret)
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(strings.NewReader(string(body)))
	if w := f.send(req); w.Code != http.StatusOK {
		t.Fatalf("click: %d %s", w.Code, w.Body)
	}
	a := f.state(t)
	if a.State != approval.Approved || a.DecidedBy != approvaltest.Lead || a.Reusable || a.DecidedVia != "slack channel C0OPS" {
		t.Errorf("approval %+v", a)
	}
	reply := f.replies.last(t)
	if !reply.ReplaceOriginal || !strings.Contains(reply.Text, "Approved once by <@"+approvaltest.Lead+">") {
		t.Errorf("reply %+v", reply)
	}
	for _, b := range reply.Blocks.BlockSet {
		if b.ID() == notify.ActionsBlockID {
			t.Error("the decided message still has its buttons")
		}
	}
	replay := httptest.NewRequest("POST", "/v1/slack/interactivity", strings.NewReader(string(body)))
	replay.Header = req.Header.Clone()
	if w := f.send(replay); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "replay") {
		t.Errorf("replay: %d %s", w.Code, w.Body)
	}
}

// TestRefusedClicks: a bad signature, a stale timestamp, a non-approver
// and the requester (though a member of an approving group) are refused;
// the approval stays pending.
func TestRefusedClicks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		name   string
		req    *http.Request
		status int
		reply  string
	}{
		{"bad signature", f.click(approvaltest.Lead, approval.ActionApprove, f.a.ID, time.Now(), "another-secret"), 401, ""},
		{"stale timestamp", f.click(approvaltest.Lead, approval.ActionApprove, f.a.ID, time.Now().Add(-6*time.Minute), signingSecret), 401, ""},
		{"not an approver", f.click(approvaltest.Other, approval.ActionApprove, f.a.ID, time.Now(), signingSecret), 200, "not among the approvers"},
		{"the requester", f.click(approvaltest.Requester, approval.ActionApprove, f.a.ID, time.Now(), signingSecret), 200, "not among the approvers"},
	} {
		w := f.send(tt.req)
		if w.Code != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, w.Code, w.Body, tt.status)
		}
		if tt.reply != "" {
			if r := f.replies.last(t); r.ReplaceOriginal || r.ResponseType != slack.ResponseTypeEphemeral || !strings.Contains(r.Text, tt.reply) {
				t.Errorf("%s: reply %+v", tt.name, r)
			}
		}
		if a := f.state(t); a.State != approval.Pending {
			t.Fatalf("%s: the approval is %s", tt.name, a.State)
		}
	}
}

// TestGroupMemberApprovesForAWhile: a member of an approving user group
// may approve, for the button's hour capped at the groups' 15 minutes.
func TestGroupMemberApprovesForAWhile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if w := f.send(f.click(approvaltest.Member, approval.ActionApproveFor, f.a.ID, time.Now(), signingSecret)); w.Code != 200 {
		t.Fatalf("click: %d %s", w.Code, w.Body)
	}
	a := f.state(t)
	if a.State != approval.Approved || !a.Reusable || a.GrantUntil.Sub(a.Decided) != 15*time.Minute {
		t.Errorf("approval %+v", a)
	}
	if !strings.Contains(f.replies.last(t).Text, "Approved by <@"+approvaltest.Member+"> until") {
		t.Errorf("reply %+v", f.replies.last(t))
	}
}

// TestTwoApproversAtOnce: two approvers click at once, one to approve and
// one to deny: one decision is taken, the other is told it came too late.
func TestTwoApproversAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reqs := []*http.Request{
		f.click(approvaltest.Lead, approval.ActionApprove, f.a.ID, time.Now(), signingSecret),
		f.click(approvaltest.Member, approval.ActionDeny, f.a.ID, time.Now(), signingSecret),
	}
	var wg sync.WaitGroup
	for _, r := range reqs {
		wg.Go(func() { f.send(r) })
	}
	wg.Wait()
	f.replies.mu.Lock()
	defer f.replies.mu.Unlock()
	decided, late := 0, 0
	for _, m := range f.replies.msgs {
		switch {
		case m.ReplaceOriginal:
			decided++
		case strings.Contains(m.Text, "no longer pending"):
			late++
		}
	}
	if a := f.state(t); decided != 1 || late != 1 || a.State == approval.Pending {
		t.Errorf("%d decided, %d late, approval %s; want one of each", decided, late, a.State)
	}
}

// TestApprovalPostedWithButtons: a new approval reaches a Slack channel
// (slack-go's test server) as a message with the request's facts and the
// three buttons, each naming the approval.
func TestApprovalPostedWithButtons(t *testing.T) {
	t.Parallel()
	posted := make(chan slack.Blocks, 1)
	api := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			var b slack.Blocks
			json.Unmarshal([]byte(r.FormValue("blocks")), &b)
			posted <- b
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1772366400.000100"}`, r.FormValue("channel"))
		})
	})
	api.Start()
	t.Cleanup(api.Stop)
	f := newFixture(t)
	pol, err := approvaltestPolicyWithSlack()
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(notify.Config{Channels: pol, Secrets: secret.Map{"slack-bot-token": "xoxb-test"}, SlackAPIURL: api.GetAPIURL(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(context.Background(), []string{"ops"}, approvalpost.Message(f.a)); err != nil {
		t.Fatal(err)
	}
	blocks := <-posted
	var buttons []string
	text := ""
	for _, b := range blocks.BlockSet {
		switch b := b.(type) {
		case *slack.ActionBlock:
			for _, e := range b.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.Value == f.a.ID {
					buttons = append(buttons, btn.ActionID+":"+btn.Text.Text)
				}
			}
		case *slack.SectionBlock:
			for _, fl := range b.Fields {
				text += fl.Text + "\n"
			}
		}
	}
	want := []string{approval.ActionApprove + ":Approve", approval.ActionApproveFor + ":Approve for 15m", approval.ActionDeny + ":Deny"}
	if strings.Join(buttons, ",") != strings.Join(want, ",") {
		t.Errorf("buttons %q, want %q", buttons, want)
	}
	for _, fact := range []string{"git:push", "github.com/acme/web:refs/heads/main", "main-push", "leads"} {
		if !strings.Contains(text, fact) {
			t.Errorf("the message does not say %q:\n%s", fact, text)
		}
	}
}

// approvaltestPolicyWithSlack is the suite's policy with its channel ops
// on Slack.
func approvaltestPolicyWithSlack() (*policy.Policy, error) {
	src := strings.Replace(approvaltest.Policy, `ops: {type: webhook, url: "https://hooks.example.com/warden"}`,
		`ops: {type: slack, channel: C0OPS, secret: slack-bot-token}`, 1)
	return policy.Load("p.yaml", []byte(src))
}

// TestSocketMode: a click arriving over Socket Mode (slack-go's test
// server's websocket, the envelope sent until the client is connected)
// decides as over HTTP, and the message is replaced with the outcome.
func TestSocketMode(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	api := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/usergroups.users.list", func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "users": []string{}})
		})
	})
	api.Start()
	t.Cleanup(api.Stop)
	f.app.APIURL = api.GetAPIURL()
	f.app.Secrets = secret.Map{BotToken: "xoxb-test", AppToken: "xapp-test", SigningSecret: signingSecret}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.app.RunSocketMode(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]string{"id": approvaltest.Lead}, "channel": map[string]string{"id": "C0OPS"},
		"response_url": f.replies.srv.URL + "/hooks/response",
		"actions":      []map[string]string{{"action_id": approval.ActionDeny, "value": f.a.ID, "block_id": notify.ActionsBlockID, "type": "button"}},
	})
	envelope := fmt.Sprintf(`{"type":"interactive","envelope_id":"e1","payload":%s,"accepts_response_payload":false}`, payload)
	for i := 0; f.state(t).State == approval.Pending; i++ {
		if i == 200 {
			t.Fatal("the click over Socket Mode was not taken")
		}
		if i%10 == 0 {
			api.SendToWebsocket(`{"type":"hello","num_connections":1}`)
			api.SendToWebsocket(envelope)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a := f.state(t)
	if a.State != approval.Denied || a.DecidedBy != approvaltest.Lead {
		t.Errorf("approval %+v", a)
	}
	if r := f.replies.last(t); !r.ReplaceOriginal || !strings.Contains(r.Text, "Denied by") {
		t.Errorf("reply %+v", r)
	}
}

// TestSlackEvents runs every sample of events/slack through the slack
// function's handler (API Gateway's event to the app): the click approves.
func TestSlackEvents(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "slack", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := slackevent.Fill(raw, map[string]string{"user": approvaltest.Lead, "approval": f.a.ID,
				"response_url": f.replies.srv.URL + "/hooks/response"}, signingSecret, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			resp, err := lambdas.Buffered(f.app)(context.Background(), ev)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("handler: %+v, %v", resp, err)
			}
			if a := f.state(t); a.State != approval.Approved || a.DecidedBy != approvaltest.Lead {
				t.Errorf("approval %+v", a)
			}
		})
	}
}
