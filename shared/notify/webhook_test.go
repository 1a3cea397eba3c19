package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func decodeBody(t *testing.T, r *http.Request) WebhookBody {
	t.Helper()
	var b WebhookBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		t.Errorf("decode webhook body: %v", err)
	}
	return b
}

func TestWebhookSigned(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_772_366_400, 0)
	type received struct {
		header http.Header
		body   []byte
	}
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), body}
	}))
	t.Cleanup(srv.Close)
	p := loadPolicy(t, fmt.Sprintf("  hook: {type: webhook, url: %q, secret: hook-key}\n", srv.URL+"/warden"))
	n := newNotifier(t, p, func(c *Config) { c.Now = func() time.Time { return now } })
	if err := n.Send(t.Context(), []string{"hook"}, testMessage); err != nil {
		t.Fatal(err)
	}
	r := <-got
	h := r.header
	if h.Get("Content-Type") != "application/json" || h.Get(TimestampHeader) != "1772366400" ||
		h.Get(EventHeader) != "watchdog.paused" || len(h.Get(DeliveryHeader)) != len("ANG47GBQLDNGAYPZTD7K2XHKGI.hook") ||
		!strings.HasSuffix(h.Get(DeliveryHeader), ".hook") {
		t.Errorf("headers %v", h)
	}
	if err := Verify(hookKey, h.Get(TimestampHeader), h.Get(SignatureHeader), r.body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	if err := Verify("other-key", h.Get(TimestampHeader), h.Get(SignatureHeader), r.body, now, 5*time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signature verifies under another key: %v", err)
	}
	tampered := strings.Replace(string(r.body), "20 upstream", "2 upstream", 1)
	if err := Verify(hookKey, h.Get(TimestampHeader), h.Get(SignatureHeader), []byte(tampered), now, 5*time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered body verifies: %v", err)
	}
	if err := Verify(hookKey, h.Get(TimestampHeader), h.Get(SignatureHeader), r.body, now.Add(10*time.Minute), 5*time.Minute); err == nil ||
		err.Error() != "webhook signature does not match: the timestamp is 10m0s away from now; the tolerance is 5m0s" {
		t.Errorf("replayed delivery: %v", err)
	}
	var b WebhookBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatal(err)
	}
	want := WebhookBody{ID: h.Get(DeliveryHeader), Event: testMessage.Event, Time: testMessage.Time, Severity: Critical,
		Title: testMessage.Title, Text: testMessage.Text, Fields: testMessage.Fields, Link: testMessage.Link}
	if fmt.Sprint(b) != fmt.Sprint(want) {
		t.Errorf("body\n%+v\nwant\n%+v", b, want)
	}
}

func TestWebhookUnsigned(t *testing.T) {
	t.Parallel()
	var sig atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig.Store(r.Header.Get(SignatureHeader) + "|" + r.Header.Get(TimestampHeader))
	}))
	t.Cleanup(srv.Close)
	p := loadPolicy(t, fmt.Sprintf("  hook: {type: webhook, url: %q}\n", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)))
	n := newNotifier(t, p, nil)
	if err := n.Send(t.Context(), []string{"hook"}, testMessage); err != nil {
		t.Fatal(err)
	}
	if s := sig.Load().(string); !strings.HasPrefix(s, "|1") {
		t.Errorf("signature|timestamp %q: want no signature and a timestamp", s)
	}
}

func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses []int // answers in turn; the last repeats
		hits     int64
		want     string
	}{
		{"success", []int{200}, 1, ""},
		{"5xx then success", []int{503, 502, 204}, 3, ""},
		{"429 then success", []int{429, 200}, 2, ""},
		{"5xx every time", []int{500}, 3, `notify webhook channel "hook": after 3 attempts: webhook to 127.0.0.1 answered HTTP 500`},
		{"4xx is not retried", []int{503, 400}, 2, `notify webhook channel "hook": after 2 attempts: webhook to 127.0.0.1 answered HTTP 400`},
		{"401 is not retried", []int{401}, 1, `notify webhook channel "hook": webhook to 127.0.0.1 answered HTTP 401`},
		{"redirect is not followed", []int{302}, 1, `notify webhook channel "hook": webhook to 127.0.0.1 answered HTTP 302; redirects are not followed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(hits.Add(1)) - 1
				status := tt.statuses[min(i, len(tt.statuses)-1)]
				if status == http.StatusFound {
					w.Header().Set("Location", "http://example.com/")
				}
				w.WriteHeader(status)
			}))
			t.Cleanup(srv.Close)
			p := loadPolicy(t, fmt.Sprintf("  hook: {type: webhook, url: %q, secret: hook-key}\n", srv.URL+"/h?token=URLSECRET"))
			n := newNotifier(t, p, nil)
			err := n.Send(t.Context(), []string{"hook"}, testMessage)
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

func TestWebhookTimeout(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	p := loadPolicy(t, fmt.Sprintf("  hook: {type: webhook, url: %q}\n", srv.URL))
	n := newNotifier(t, p, func(c *Config) { c.Timeout, c.Attempts = 50*time.Millisecond, 2 })
	start := time.Now()
	err := n.Send(t.Context(), []string{"hook"}, testMessage)
	want := `notify webhook channel "hook": after 2 attempts: webhook to 127.0.0.1: no answer within the timeout`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if hits.Load() != 2 || time.Since(start) > 2*time.Second {
		t.Errorf("%d requests in %s", hits.Load(), time.Since(start))
	}
}

func TestWebhookNetworkError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	p := loadPolicy(t, fmt.Sprintf("  hook: {type: webhook, url: %q, secret: hook-key}\n", url+"/p/URLSECRET"))
	n := newNotifier(t, p, nil)
	err := n.Send(t.Context(), []string{"hook"}, testMessage)
	if err == nil || !strings.HasPrefix(err.Error(), `notify webhook channel "hook": after 3 attempts: webhook to 127.0.0.1: dial failed: `) {
		t.Errorf("error %v", err)
	}
	if strings.Contains(err.Error(), "URLSECRET") {
		t.Errorf("error shows the URL: %v", err)
	}
	assertNoSecret(t, err)
}

func TestWebhookURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://hooks.example.com/warden":                 "",
		"http://127.0.0.1:8080/h":                          "",
		"http://localhost/h":                               "",
		"http://example.com/h":                             "the webhook url must be https (http only to 127.0.0.1 or localhost)",
		"http://127.0.0.1.example.com/h":                   "the webhook url must be https (http only to 127.0.0.1 or localhost)",
		"ftp://example.com/h":                              "the webhook url must be https (http only to 127.0.0.1 or localhost)",
		"https://user:SECRET@example.com/h":                "the webhook url holds credentials; name a secret: instead",
		"https:///nohost":                                  "the webhook url is not an absolute URL",
		"https://example.com/%zz":                          "the webhook url is not an absolute URL",
		"https://example.com/" + strings.Repeat("a", 2100): "the webhook url is 2120 bytes; the limit is 2048",
	} {
		_, err := webhookURL(raw)
		if got := fmt.Sprint(err); (want == "" && err != nil) || (want != "" && got != want) {
			t.Errorf("webhookURL(%.40q): %v, want %q", raw, err, want)
		}
	}
}

func TestVerifyRefusesMalformed(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_772_366_400, 0)
	good := Sign("k", "1772366400", []byte("{}"))
	for _, tc := range []struct{ ts, sig, want string }{
		{"1772366400", good, ""},
		{"1772366400", strings.TrimPrefix(good, "sha256="), "webhook signature does not match: the signature is not sha256= and 64 hex digits"},
		{"1772366400", good[:len(good)-1] + "g", "webhook signature does not match: the signature is not sha256= and 64 hex digits"},
		{"1772366400", "sha256=" + strings.Repeat("0", 64), "webhook signature does not match"},
		{"-5", good, "webhook signature does not match: the timestamp is not Unix seconds"},
		{"1e9", good, "webhook signature does not match: the timestamp is not Unix seconds"},
		{"99999999999999999999", good, "webhook signature does not match: the timestamp is not Unix seconds"},
	} {
		err := Verify("k", tc.ts, tc.sig, []byte("{}"), now, time.Minute)
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("Verify(%q, %q): %v, want %q", tc.ts, tc.sig, err, tc.want)
		}
	}
}
