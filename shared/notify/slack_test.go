package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// slackPost is what slacktest's server received on chat.postMessage (or
// chat.update: method "update", with the ts of the message replaced).
type slackPost struct {
	method, auth, token, channel, text, ts string
	blocks                                 slack.Blocks
}

// slackServer starts slack-go's test server with chat.postMessage
// recording each post and answering with the given answers in turn (the
// last repeats): "ok", "error:<code>" or an HTTP status such as "503".
func slackServer(t *testing.T, answers ...string) (*slacktest.Server, func() []slackPost) {
	t.Helper()
	var (
		mu    sync.Mutex
		posts []slackPost
		hits  atomic.Int64
	)
	handle := func(method string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				t.Errorf("parse form: %v", err)
			}
			p := slackPost{method: method, auth: r.Header.Get("Authorization"), token: r.PostForm.Get("token"),
				channel: r.PostForm.Get("channel"), text: r.PostForm.Get("text"), ts: r.PostForm.Get("ts")}
			if err := json.Unmarshal([]byte(r.PostForm.Get("blocks")), &p.blocks); err != nil {
				t.Errorf("decode blocks: %v", err)
			}
			mu.Lock()
			posts = append(posts, p)
			mu.Unlock()
			a := answers[min(int(hits.Add(1))-1, len(answers)-1)]
			w.Header().Set("Content-Type", "application/json")
			switch {
			case a == "ok":
				fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, p.channel, cmp.Or(p.ts, "1772366400.000100"))
			case strings.HasPrefix(a, "error:"):
				fmt.Fprintf(w, `{"ok":false,"error":%q}`, strings.TrimPrefix(a, "error:"))
			case a == "429":
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
			default:
				var status int
				fmt.Sscan(a, &status)
				w.WriteHeader(status)
			}
		}
	}
	s := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", handle("post"))
		// Not served by slacktest: answered as Slack documents chat.update.
		c.Handle("/chat.update", handle("update"))
	})
	s.Start()
	t.Cleanup(s.Stop)
	return s, func() []slackPost {
		mu.Lock()
		defer mu.Unlock()
		return append([]slackPost(nil), posts...)
	}
}

func TestSlack(t *testing.T) {
	t.Parallel()
	s, posts := slackServer(t, "ok")
	p := loadPolicy(t, "  ops-slack: {type: slack, channel: C0123ABCD, secret: slack-bot-token}\n")
	n := newNotifier(t, p, func(c *Config) { c.SlackAPIURL = s.GetAPIURL() })
	if err := n.Send(t.Context(), []string{"ops-slack"}, testMessage); err != nil {
		t.Fatal(err)
	}
	got := posts()
	if len(got) != 1 {
		t.Fatalf("%d posts, want 1", len(got))
	}
	post := got[0]
	if post.channel != "C0123ABCD" || (post.auth != "Bearer "+slackToken && post.token != slackToken) {
		t.Errorf("post to %q with auth %q / token %q", post.channel, post.auth, post.token)
	}
	if want := "Session d97e2169 paused: " + testMessage.Text; post.text != want {
		t.Errorf("fallback text %q, want %q", post.text, want)
	}
	bs := post.blocks.BlockSet
	if len(bs) != 3 {
		t.Fatalf("%d blocks, want header, section, context: %+v", len(bs), bs)
	}
	if h, ok := bs[0].(*slack.HeaderBlock); !ok || h.Text.Text != "Session d97e2169 paused" || h.Text.Type != slack.PlainTextType {
		t.Errorf("header %+v", bs[0])
	}
	sec, ok := bs[1].(*slack.SectionBlock)
	if !ok || sec.Text.Text != testMessage.Text || len(sec.Fields) != 3 || sec.Fields[2].Text != "*session*\nd97e2169" {
		t.Errorf("section %+v", bs[1])
	}
	ctx, ok := bs[2].(*slack.ContextBlock)
	want := ":red_circle: critical · `watchdog.paused` · <https://warden.example.com/sessions/d97e2169|Open in Warden>"
	if !ok || len(ctx.ContextElements.Elements) != 1 || ctx.ContextElements.Elements[0].(*slack.TextBlockObject).Text != want {
		t.Errorf("context %+v", bs[2])
	}
}

// TestSlackReplace: a message with a Ref is reported once posted, with the
// channel and the ts Slack answered; an envelope to that target replaces
// the message (chat.update) and is not reported again; a target of another
// type with a ts is refused.
func TestSlackReplace(t *testing.T) {
	t.Parallel()
	s, posts := slackServer(t, "ok")
	p := loadPolicy(t, "  ops-slack: {type: slack, channel: C0123ABCD, secret: slack-bot-token}\n"+
		"  hook: {type: webhook, url: \"https://hooks.example.com/w\"}\n")
	var (
		mu       sync.Mutex
		reported []Target
	)
	n := newNotifier(t, p, func(c *Config) {
		c.SlackAPIURL = s.GetAPIURL()
		c.OnPosted = func(_ context.Context, ref string, posted Target) {
			mu.Lock()
			defer mu.Unlock()
			if ref != "APR-QX5VZ2M3T7K4B6NZ" {
				t.Errorf("reported ref %q", ref)
			}
			reported = append(reported, posted)
		}
	})
	m := testMessage
	m.Ref = "APR-QX5VZ2M3T7K4B6NZ"
	if err := n.Send(t.Context(), []string{"ops-slack"}, m); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(reported)
	mu.Unlock()
	if len(got) != 1 || got[0].Name != "ops-slack" || got[0].Channel.Channel != "C0123ABCD" || got[0].TS != "1772366400.000100" ||
		got[0].Channel.Secret != "slack-bot-token" {
		t.Fatalf("reported %+v, want ops-slack's post C0123ABCD/1772366400.000100", got)
	}

	m.Title, m.Text = "Session d97e2169 resumed", "resumed by alice"
	if err := n.Deliver(t.Context(), Envelope{ID: "e1", Message: m.clean(m.Time), To: got}); err != nil {
		t.Fatal(err)
	}
	all := posts()
	if len(all) != 2 {
		t.Fatalf("%d requests, want a post and an update", len(all))
	}
	up := all[1]
	if up.method != "update" || up.channel != "C0123ABCD" || up.ts != "1772366400.000100" || !strings.HasPrefix(up.text, "Session d97e2169 resumed") {
		t.Errorf("update %+v, want chat.update of C0123ABCD/1772366400.000100 with the new text", up)
	}
	if h, ok := up.blocks.BlockSet[0].(*slack.HeaderBlock); !ok || h.Text.Text != "Session d97e2169 resumed" {
		t.Errorf("the update's blocks %+v", up.blocks.BlockSet)
	}
	mu.Lock()
	if len(reported) != 1 {
		t.Errorf("the update was reported as a new post: %+v", reported)
	}
	mu.Unlock()

	e, err := Address(p, []string{"hook"}, m, m.Time)
	if err != nil {
		t.Fatal(err)
	}
	e.To[0].TS = "1772366400.000100"
	if err := n.Deliver(t.Context(), e); err == nil || !strings.Contains(err.Error(), "a webhook message cannot be replaced") {
		t.Errorf("replacing a webhook message: %v", err)
	}
}

func TestSlackEscapesMarkup(t *testing.T) {
	t.Parallel()
	blocks := SlackBlocks(Message{Title: "<!channel>", Text: "rm -rf <@U123> & <https://evil|click>",
		Fields: []Field{{"agent", "<!here>"}}, Severity: Info}.clean(testMessage.Time))
	data, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"<@U123>", "<!here>", "<https://evil"} {
		if strings.Contains(string(data), s) {
			t.Errorf("blocks carry live markup %q: %s", s, data)
		}
	}
	if !strings.Contains(string(data), `rm -rf \u0026lt;@U123\u0026gt; \u0026amp; `) {
		t.Errorf("text not escaped: %s", data)
	}
	// A message with neither text nor fields has no section.
	if got := SlackBlocks(Message{Title: "t", Severity: Warning}); len(got) != 2 {
		t.Errorf("%d blocks, want header and context", len(got))
	}
}

func TestSlackErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answers []string
		posts   int
		want    string
	}{
		{"channel not found", []string{"error:channel_not_found"}, 1, `notify slack channel "ops-slack": slack refused the message: channel_not_found`},
		{"invalid auth", []string{"error:invalid_auth"}, 1, `notify slack channel "ops-slack": slack refused the message: invalid_auth`},
		{"5xx, then ok", []string{"503", "ok"}, 2, ""},
		{"rate limited, then ok", []string{"429", "ok"}, 2, ""},
		{"5xx every time", []string{"500"}, 3, `notify slack channel "ops-slack": after 3 attempts: slack answered HTTP 500`},
		{"4xx", []string{"404"}, 1, `notify slack channel "ops-slack": slack answered HTTP 404`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, posts := slackServer(t, tt.answers...)
			p := loadPolicy(t, "  ops-slack: {type: slack, channel: C0123ABCD, secret: slack-bot-token}\n")
			n := newNotifier(t, p, func(c *Config) { c.SlackAPIURL = s.GetAPIURL() })
			err := n.Send(t.Context(), []string{"ops-slack"}, testMessage)
			if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
			if got := len(posts()); got != tt.posts {
				t.Errorf("%d posts, want %d", got, tt.posts)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestSlackNetworkErrorHoldsNoToken(t *testing.T) {
	t.Parallel()
	s, _ := slackServer(t, "ok")
	url := s.GetAPIURL()
	s.Stop()
	p := loadPolicy(t, "  ops-slack: {type: slack, channel: C0123ABCD, secret: slack-bot-token}\n")
	n := newNotifier(t, p, func(c *Config) { c.SlackAPIURL = url })
	err := n.Send(t.Context(), []string{"ops-slack"}, testMessage)
	if err == nil || !strings.HasPrefix(err.Error(), `notify slack channel "ops-slack": after 3 attempts: slack: dial failed: `) {
		t.Errorf("error %v", err)
	}
	assertNoSecret(t, err)
}
