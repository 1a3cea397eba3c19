package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestEnvelopeDelivered: a message addressed where the policy is (the api
// function) and delivered elsewhere from its JSON (the notifier function,
// which has no policy) reaches the channel, with the same delivery ID
// every time it is delivered.
func TestEnvelopeDelivered(t *testing.T) {
	t.Parallel()
	ids := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids <- r.Header.Get(DeliveryHeader)
	}))
	t.Cleanup(srv.Close)
	p := loadPolicy(t, fmt.Sprintf("  hook: {type: webhook, url: %q}\n  ops: {type: slack, channel: C123, secret: slack-bot-token}\n", srv.URL))
	e, err := Address(p, []string{"hook"}, testMessage, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Address(p, []string{"hook", "opps"}, testMessage, time.Now()); err == nil || !strings.Contains(err.Error(), `unknown notification channel "opps"`) {
		t.Errorf("Address to an unknown channel: %v", err)
	}
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(e) {
		t.Errorf("round trip\n%+v\nwant\n%+v", got, e)
	}
	n, err := New(Config{Secrets: testSecrets, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := n.Deliver(t.Context(), got); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := <-ids, <-ids; a != e.ID+".hook" || b != a {
		t.Errorf("delivery IDs %q and %q, want %q twice", a, b, e.ID+".hook")
	}
	if err := n.Send(t.Context(), []string{"hook"}, testMessage); err == nil || !strings.Contains(err.Error(), "no policy is loaded") {
		t.Errorf("Send without a policy: %v", err)
	}
}

func TestParseEnvelopeRefuses(t *testing.T) {
	t.Parallel()
	hook := `{"name":"hook","channel":{"Type":"webhook","URL":"https://example.com/h"}}`
	for _, tt := range []struct{ name, data, want string }{
		{"not JSON", `{`, "notification envelope: unexpected EOF"},
		{"unknown field", `{"id":"A","to":[` + hook + `],"extra":1}`, `notification envelope: json: unknown field "extra"`},
		{"trailing data", `{"id":"A","to":[` + hook + `]} {}`, "notification envelope: data after the JSON object"},
		{"no ID", `{"to":[` + hook + `]}`, "notification envelope: no ID, or one longer than 64 bytes"},
		{"long ID", `{"id":"` + strings.Repeat("A", 65) + `","to":[` + hook + `]}`, "notification envelope: no ID, or one longer than 64 bytes"},
		{"no channel", `{"id":"A","to":[]}`, "notification envelope A: 0 channels, not 1 to 20"},
		{"too many channels", `{"id":"A","to":[` + strings.Repeat(hook+",", 20) + hook + `]}`, "notification envelope A: 21 channels, not 1 to 20"},
		{"unnamed channel", `{"id":"A","to":[{"channel":{"Type":"webhook"}}]}`, "notification envelope A: a channel without a name"},
		{"too large", `{"id":"A","message":{"Text":"` + strings.Repeat("x", MaxEnvelope) + `"}}`, fmt.Sprintf("notification envelope: %d bytes, more than %d", MaxEnvelope+32, MaxEnvelope)},
	} {
		if _, err := ParseEnvelope([]byte(tt.data)); err == nil || err.Error() != tt.want {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}
