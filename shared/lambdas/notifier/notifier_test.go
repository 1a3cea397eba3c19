package notifier

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/secret"
)

const hookKey = "whsec-ops-hook-0123456789abcdef"

// hook is a webhook receiver that answers with status and keeps what it
// was sent.
type hook struct {
	status int
	mu     sync.Mutex
	got    []string // event and delivery ID of each verified request
	bad    []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	err := notify.Verify(hookKey, r.Header.Get(notify.TimestampHeader), r.Header.Get(notify.SignatureHeader), body, time.Now(), time.Minute)
	if err != nil {
		h.bad = append(h.bad, err.Error())
	} else {
		h.got = append(h.got, r.Header.Get(notify.EventHeader)+" "+r.Header.Get(notify.DeliveryHeader))
	}
	w.WriteHeader(h.status)
}

// sampleEvent reads events/notifier/stream-batch.json, addressed to url.
func sampleEvent(t *testing.T, url string) events.DynamoDBEvent {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "notifier", "stream-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(data), "{{webhook_url}}", url)), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func newHandler(t *testing.T, out io.Writer, log io.Writer) *Handler {
	t.Helper()
	n, err := notify.New(notify.Config{Secrets: secret.Map{"ops-hook-key": hookKey}, Backoff: time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &Handler{Deliver: n.Deliver, Metrics: &lambdas.Metrics{Stage: "test", Out: out}, Log: slog.New(slog.NewTextHandler(log, nil))}
}

// TestNotifierEvents runs the sample stream batch through the handler:
// both messages reach the webhook, signed, with their delivery IDs; the
// TTL expiry and the unreadable item are skipped, the latter logged; no
// failure is counted and no record is reported failed.
func TestNotifierEvents(t *testing.T) {
	t.Parallel()
	h := &hook{status: http.StatusOK}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var metrics, log strings.Builder
	resp, err := newHandler(t, &metrics, &log).Handle(t.Context(), sampleEvent(t, srv.URL))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	slices.Sort(h.got)
	want := []string{"budget.alert QX5VZ2M3T7K4B6N8P1R9S0D2FA.ops-hook", "watchdog.paused J3H6K9L2M5N8P1Q4R7S0T3U6VW.ops-hook"}
	if !slices.Equal(h.got, want) || len(h.bad) != 0 {
		t.Errorf("webhook got %q (bad signatures %q), want %q", h.got, h.bad, want)
	}
	if metrics.Len() != 0 {
		t.Errorf("metrics %s", metrics.String())
	}
	if !strings.Contains(log.String(), "skip an unreadable item") || !strings.Contains(log.String(), "notification envelope BROKEN: 0 channels") {
		t.Errorf("log does not report the unreadable item:\n%s", log.String())
	}
}

// TestNotifierCountsFailures: a channel that refuses is counted in
// NotificationsFailed, once per message, and the batch still succeeds
// (no redelivery to channels that had the message).
func TestNotifierCountsFailures(t *testing.T) {
	t.Parallel()
	h := &hook{status: http.StatusBadRequest}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var metrics strings.Builder
	resp, err := newHandler(t, &metrics, io.Discard).Handle(t.Context(), sampleEvent(t, srv.URL))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	lines := strings.Split(strings.TrimSpace(metrics.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("metric lines %q, want 2", lines)
	}
	for _, l := range lines {
		var line struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Namespace string
					Metrics   []struct{ Name string }
				}
			} `json:"_aws"`
			Stage  string
			Failed int    `json:"NotificationsFailed"`
			Event  string `json:"event"`
		}
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatal(err)
		}
		cw := line.AWS.CloudWatchMetrics
		if len(cw) != 1 || cw[0].Namespace != "Warden" || cw[0].Metrics[0].Name != "NotificationsFailed" || line.Stage != "test" ||
			line.Failed != 1 || (line.Event != "budget.alert" && line.Event != "watchdog.paused") {
			t.Errorf("metric line %s", l)
		}
	}
}

// TestNotifierGivesUpBeforeTheDeadline: deliveries that hang are given up
// before the invocation's deadline, and counted, rather than cut off by
// the timeout (which would have the batch sent again).
func TestNotifierGivesUpBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(func() { close(release); srv.Close() })
	var metrics strings.Builder
	ctx, cancel := context.WithTimeout(t.Context(), margin+300*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp, err := newHandler(t, &metrics, io.Discard).Handle(ctx, sampleEvent(t, srv.URL))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	if took := time.Since(start); took > margin {
		t.Errorf("Handle took %v, past the margin before the deadline", took)
	}
	if n := strings.Count(metrics.String(), `"NotificationsFailed":1`); n != 2 {
		t.Errorf("%d failures counted, want 2:\n%s", n, metrics.String())
	}
}
