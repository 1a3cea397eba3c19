package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wardenhq/warden/shared/secret"
)

// telegramServer fakes the Bot API's sendMessage: it checks the token in
// the path, records the request, and answers with the given status and
// body in turn (the last repeats).
func telegramServer(t *testing.T, answers ...string) (*httptest.Server, *atomic.Int64, chan map[string]any) {
	t.Helper()
	var hits atomic.Int64
	got := make(chan map[string]any, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(hits.Add(1)) - 1
		if r.Method != http.MethodPost || r.URL.Path != "/bot"+telegramToken+"/sendMessage" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"ok":false,"error_code":404,"description":"Not Found"}`))
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("decode sendMessage: %v", err)
		}
		got <- body
		a := answers[min(i, len(answers)-1)]
		var status int
		var rest string
		if _, err := fmt.Sscanf(a, "%d", &status); err != nil {
			t.Fatalf("answer %q", a)
		}
		_, rest, _ = strings.Cut(a, " ")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(rest))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits, got
}

const telegramOK = `200 {"ok":true,"result":{"message_id":7,"chat":{"id":-1001234567890},"text":"…"}}`

func TestTelegram(t *testing.T) {
	t.Parallel()
	srv, hits, got := telegramServer(t, telegramOK)
	p := loadPolicy(t, "  tg: {type: telegram, chat_id: \"-1001234567890\", secret: telegram-bot-token}\n")
	n := newNotifier(t, p, func(c *Config) { c.TelegramAPIURL = srv.URL + "/" })
	if err := n.Send(t.Context(), []string{"tg"}, testMessage); err != nil {
		t.Fatal(err)
	}
	body := <-got
	want := "Session d97e2169 paused\n\n" + testMessage.Text + "\n\nproject: project-a\nagent: claude\nsession: d97e2169\n\n" + testMessage.Link
	if body["chat_id"] != "-1001234567890" || body["text"] != want || body["disable_web_page_preview"] != true {
		t.Errorf("sendMessage %v", body)
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests", hits.Load())
	}
}

func TestTelegramErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answers []string
		hits    int64
		want    string
	}{
		{"chat not found", []string{`400 {"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`}, 1,
			`notify telegram channel "tg": telegram refused the message: HTTP 400: Bad Request: chat not found`},
		{"rate limited, then sent", []string{`429 {"ok":false,"error_code":429,"description":"Too Many Requests: retry after 0","parameters":{"retry_after":0}}`, telegramOK}, 2, ""},
		{"5xx every time", []string{`502 <html>bad gateway</html>`}, 3,
			`notify telegram channel "tg": after 3 attempts: telegram answered HTTP 502, not with the Bot API's JSON`},
		{"unauthorized", []string{`401 {"ok":false,"error_code":401,"description":"Unauthorized"}`}, 1,
			`notify telegram channel "tg": telegram refused the message: HTTP 401: Unauthorized`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, hits, _ := telegramServer(t, tt.answers...)
			p := loadPolicy(t, "  tg: {type: telegram, chat_id: \"-1001234567890\", secret: telegram-bot-token}\n")
			n := newNotifier(t, p, func(c *Config) { c.TelegramAPIURL = srv.URL })
			err := n.Send(t.Context(), []string{"tg"}, testMessage)
			if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
			if hits.Load() != tt.hits {
				t.Errorf("%d requests, want %d", hits.Load(), tt.hits)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestTelegramTokenNeverInErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // the token would be in the URL of the failed request
	p := loadPolicy(t, "  tg: {type: telegram, chat_id: \"42\", secret: telegram-bot-token}\n"+
		"  tg-bad: {type: telegram, chat_id: \"42\", secret: not-a-token}\n")
	secrets := secret.Map{"telegram-bot-token": telegramToken, "not-a-token": "SECRET/../../x"}
	n := newNotifier(t, p, func(c *Config) { c.TelegramAPIURL, c.Secrets = base, secrets })
	err := n.Send(t.Context(), []string{"tg"}, testMessage)
	if err == nil || !strings.HasPrefix(err.Error(), `notify telegram channel "tg": after 3 attempts: telegram: dial failed: `) {
		t.Errorf("error %v", err)
	}
	assertNoSecret(t, err)
	err = n.Send(t.Context(), []string{"tg-bad"}, testMessage)
	if err == nil || err.Error() != `notify telegram channel "tg-bad": secret "not-a-token" does not look like a Telegram bot token (123456789:AA…)` {
		t.Errorf("error %v", err)
	}
	assertNoSecret(t, err)
}
