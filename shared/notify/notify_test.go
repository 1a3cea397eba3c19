package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/secret"
)

// Test secrets. None of them may appear in an error.
const (
	slackToken    = "xoxb-1111-2222-SLACKTOKENSECRET"
	telegramToken = "123456789:AAtelegramTOKENsecret_0123456789"
	hookKey       = "whsec-HOOK-SIGNING-KEY"
)

var testSecrets = secret.Map{"slack-bot-token": slackToken, "telegram-bot-token": telegramToken, "hook-key": hookKey}

// loadPolicy loads a policy whose notifications are the given YAML block.
func loadPolicy(t *testing.T, notifications string) *policy.Policy {
	t.Helper()
	p, err := policy.Load("p.yaml", []byte("version: 1\nnotifications:\n"+notifications))
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	return p
}

// newNotifier returns a notifier with fast retries, closed at the end.
func newNotifier(t *testing.T, p *policy.Policy, edit func(*Config)) *Notifier {
	t.Helper()
	cfg := Config{
		Channels: p, Secrets: testSecrets, Timeout: 2 * time.Second, Backoff: time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

// assertNoSecret fails when an error's text holds any test secret.
func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{slackToken, telegramToken, hookKey, "SECRET", "secret_0123"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error holds a secret: %v", err)
		}
	}
}

// counter is an HTTP handler that counts requests and answers with status.
type counter struct {
	hits   atomic.Int64
	status int
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.hits.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(c.status)
}

var testMessage = Message{
	Event: "watchdog.paused", Title: "Session d97e2169 paused", Severity: Critical,
	Text:   "watchdog: session d97e2169 got 20 upstream errors in a row (429), pause level 20",
	Fields: []Field{{"project", "project-a"}, {"agent", "claude"}, {"session", "d97e2169"}},
	Link:   "https://warden.example.com/sessions/d97e2169",
	Time:   time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
}

func TestSendRefusesBeforeSending(t *testing.T) {
	t.Parallel()
	hook := &counter{status: http.StatusOK}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	p := loadPolicy(t, fmt.Sprintf(`  hook: {type: webhook, url: %q}
  slack-no-secret: {type: slack, channel: C0123ABCD}
  slack-missing: {type: slack, channel: C0123ABCD, secret: not-there}
  tg-missing: {type: telegram, chat_id: "-100123", secret: not-there}
  hook-missing: {type: webhook, url: %q, secret: not-there}
`, srv.URL, srv.URL))
	n := newNotifier(t, p, nil)
	tests := []struct {
		name string
		to   []string
		want string
	}{
		{"unknown channel", []string{"hook", "opps"},
			`notify: unknown notification channel "opps": the policy declares no such channel under notifications:`},
		{"slack without secret", []string{"slack-no-secret"},
			`notify slack channel "slack-no-secret": the channel has no secret: naming its bot token`},
		{"slack secret not set", []string{"slack-missing"},
			`notify slack channel "slack-missing": secret "not-there": secret not set`},
		{"telegram secret not set", []string{"tg-missing"},
			`notify telegram channel "tg-missing": secret "not-there": secret not set`},
		{"webhook secret not set", []string{"hook-missing"},
			`notify webhook channel "hook-missing": secret "not-there": secret not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := n.Send(t.Context(), tt.to, testMessage)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %s", err, tt.want)
			}
			if tt.name == "webhook secret not set" && !errors.Is(err, ErrNoSecret) {
				t.Errorf("error %v is not ErrNoSecret", err)
			}
		})
	}
	if err := n.Enqueue([]string{"hook", "opps"}, testMessage); err == nil || !strings.Contains(err.Error(), `unknown notification channel "opps"`) {
		t.Errorf("enqueue to an unknown channel: %v", err)
	}
	if got := hook.hits.Load(); got != 0 {
		t.Errorf("%d requests sent, want none", got)
	}
	if st := n.Stats(); st.Sent != 0 || st.Failed != 4 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestNoPolicy(t *testing.T) {
	t.Parallel()
	n := newNotifier(t, nil, nil)
	err := n.Send(t.Context(), []string{"ops"}, testMessage)
	if err == nil || err.Error() != "notify: no policy is loaded, so no notification channel is known" {
		t.Errorf("error %v", err)
	}
}

func TestNewNeedsSecrets(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil || err.Error() != "new notifier: Secrets is required" {
		t.Errorf("error %v", err)
	}
}

// blockingHook holds every request until released.
type blockingHook struct {
	release chan struct{}
	mu      sync.Mutex
	titles  []string
}

func (b *blockingHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	<-b.release
	b.mu.Lock()
	b.titles = append(b.titles, string(body))
	b.mu.Unlock()
}

func TestEnqueueDropsWhenFullAndCloseDrains(t *testing.T) {
	t.Parallel()
	hook := &blockingHook{release: make(chan struct{})}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	p := loadPolicy(t, fmt.Sprintf("  hook: {type: webhook, url: %q}\n", srv.URL))
	n := newNotifier(t, p, func(c *Config) { c.QueueSize, c.Workers = 2, 1 })

	// The worker takes the first message and blocks on the server; two
	// more fill the queue; the fourth is dropped.
	if err := n.Enqueue([]string{"hook"}, Message{Title: "m1"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(n.queue) != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for _, title := range []string{"m2", "m3"} {
		if err := n.Enqueue([]string{"hook"}, Message{Title: title}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := n.Enqueue([]string{"hook"}, Message{Title: "m4"})
	if !errors.Is(err, ErrQueueFull) || err.Error() != `notify ["hook"]: notification queue full` {
		t.Errorf("enqueue to a full queue: %v", err)
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Errorf("enqueue blocked for %s", time.Since(start))
	}
	close(hook.release)
	if err := n.Close(t.Context()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if st := n.Stats(); st != (Stats{Sent: 3, Dropped: 1}) {
		t.Errorf("stats %+v, want 3 sent, 1 dropped", st)
	}
	if len(hook.titles) != 3 {
		t.Errorf("received %d messages, want 3", len(hook.titles))
	}
	if err := n.Enqueue([]string{"hook"}, Message{Title: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("enqueue after close: %v", err)
	}
}

func TestCloseGivesUpAtDeadline(t *testing.T) {
	t.Parallel()
	hook := &blockingHook{release: make(chan struct{})}
	srv := httptest.NewServer(hook)
	t.Cleanup(func() { close(hook.release); srv.Close() })
	p := loadPolicy(t, fmt.Sprintf("  hook: {type: webhook, url: %q}\n", srv.URL))
	n := newNotifier(t, p, func(c *Config) { c.Workers, c.Timeout = 1, time.Minute })
	for i := range 3 {
		if err := n.Enqueue([]string{"hook"}, Message{Title: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := n.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "close notifier: 3 notifications not sent: context deadline exceeded" {
		t.Errorf("close: %v", err)
	}
	st := n.Stats()
	if st.Sent != 0 || st.Failed+st.Dropped != 3 {
		t.Errorf("stats %+v, want 3 failed or dropped", st)
	}
}

func TestMessageLimits(t *testing.T) {
	t.Parallel()
	var fields []Field
	for i := range 15 {
		fields = append(fields, Field{Name: fmt.Sprint("f", i), Value: strings.Repeat("v", 500)})
	}
	m := Message{Title: strings.Repeat("t", 300) + "\x00", Text: "a\x1b[31mb\nc\xff", Fields: fields,
		Severity: "loud", Link: "javascript:alert(1)"}.clean(testMessage.Time)
	if n := len([]rune(m.Title)); n != MaxTitle || !strings.HasSuffix(m.Title, "…") {
		t.Errorf("title of %d characters: %q", n, m.Title)
	}
	if m.Text != "a [31mb\nc\uFFFD" {
		t.Errorf("text %q", m.Text)
	}
	if len(m.Fields) != MaxFields || len([]rune(m.Fields[0].Value)) != MaxFieldValue {
		t.Errorf("%d fields, the first %d long", len(m.Fields), len(m.Fields[0].Value))
	}
	if m.Severity != Info || m.Link != "" || !m.Time.Equal(testMessage.Time) {
		t.Errorf("severity %q, link %q, time %s", m.Severity, m.Link, m.Time)
	}
	for _, link := range []string{"https://w.example/s/1", "http://127.0.0.1:8080/s?id=1"} {
		if !validLink(link) {
			t.Errorf("link %q refused", link)
		}
	}
	for _, link := range []string{"https://w.example/a|b", "https://user:pw@w.example/", "/relative", "ftp://x/"} {
		if validLink(link) {
			t.Errorf("link %q accepted", link)
		}
	}
	if got := (Message{}).clean(testMessage.Time).Title; got != "Warden" {
		t.Errorf("default title %q", got)
	}
}

func TestEnvSecrets(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"slack-bot-token":        "WARDEN_SECRET_SLACK_BOT_TOKEN",
		"warden/slack-bot-token": "WARDEN_SECRET_WARDEN_SLACK_BOT_TOKEN",
		"--Hook..key--":          "WARDEN_SECRET_HOOK_KEY",
		"telegram_bot_token2":    "WARDEN_SECRET_TELEGRAM_BOT_TOKEN2",
		"/-/":                    "",
		"":                       "",
		strings.Repeat("a", 300): "",
	} {
		if got := EnvName(name); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", name, got, want)
		}
	}
	env := map[string]string{"WARDEN_SECRET_SLACK_BOT_TOKEN": slackToken, "WARDEN_SECRET_BLANK": "  "}
	s := EnvSecrets{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	if v, err := s.Get(t.Context(), "slack-bot-token"); err != nil || v != slackToken {
		t.Errorf("Get = %q, %v", v, err)
	}
	for name, want := range map[string]string{
		"telegram-bot-token": `secret "telegram-bot-token": environment variable WARDEN_SECRET_TELEGRAM_BOT_TOKEN is not set: secret not set`,
		"blank":              `secret "blank": environment variable WARDEN_SECRET_BLANK is not set: secret not set`,
		"//":                 `secret "//": the name cannot be read from the environment: secret not set`,
	} {
		_, err := s.Get(t.Context(), name)
		if err == nil || err.Error() != want || !errors.Is(err, ErrNoSecret) {
			t.Errorf("Get(%q): %v, want %s", name, err, want)
		}
	}
}

func TestCheckSecret(t *testing.T) {
	t.Parallel()
	if v, err := checkSecret("s", "  "+slackToken+"\n"); err != nil || v != slackToken {
		t.Errorf("checkSecret = %q, %v", v, err)
	}
	for v, want := range map[string]string{
		"":                              `secret "s" is empty: secret not set`,
		"xoxb-a\r\nX-Injected: 1":       `secret "s" holds spaces or control characters`,
		"two words":                     `secret "s" holds spaces or control characters`,
		strings.Repeat("x", 4097):       `secret "s" is 4097 bytes; the limit is 4096`,
		"SECRET\x00":                    `secret "s" holds spaces or control characters`,
		strings.Repeat("y", 4096) + " ": "",
	} {
		_, err := checkSecret("s", v)
		if got := fmt.Sprint(err); (want == "" && err != nil) || (want != "" && got != want) {
			t.Errorf("checkSecret(%.20q): %v, want %q", v, err, want)
		}
		assertNoSecret(t, err)
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	err := scrub(fmt.Errorf("post https://api.telegram.org/bot%s/sendMessage: %w", telegramToken, context.Canceled), telegramToken, "")
	if err.Error() != "post https://api.telegram.org/bot[redacted]/sendMessage: context canceled" || errors.Unwrap(err) != nil {
		t.Errorf("scrubbed: %v (unwraps to %v)", err, errors.Unwrap(err))
	}
	plain := errors.New("nothing to hide")
	if scrub(plain, telegramToken) != plain || scrub(nil, "x") != nil {
		t.Error("scrub changed an error without secrets")
	}
}

// TestFlushWaitsForDeliveries: Flush returns once what was queued is
// delivered, and not before; with nothing queued it returns at once; a
// context that ends first is an error.
func TestFlushWaitsForDeliveries(t *testing.T) {
	t.Parallel()
	hook := &blockingHook{release: make(chan struct{})}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	p := loadPolicy(t, fmt.Sprintf("  hook: {type: webhook, url: %q}\n", srv.URL))
	n := newNotifier(t, p, nil)
	if err := n.Flush(t.Context()); err != nil {
		t.Fatalf("Flush with nothing queued: %v", err)
	}
	for _, title := range []string{"m1", "m2"} {
		if err := n.Enqueue([]string{"hook"}, Message{Title: title}); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := n.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush while the hook blocks: %v", err)
	}
	close(hook.release)
	if err := n.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := n.Stats(); st.Sent != 2 {
		t.Errorf("after Flush: %+v, want 2 sent", st)
	}
}
