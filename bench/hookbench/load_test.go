package hookbench

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// server is a tiny test server that notes when each request arrived and
// answers with answer (200 "{}" if nil).
type server struct {
	*httptest.Server
	mu       sync.Mutex
	arrivals []time.Time
	bodies   []string
}

func newServer(t *testing.T, answer func(w http.ResponseWriter, body string)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.Header.Get("X-Test") != "yes" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.arrivals = append(s.arrivals, time.Now())
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		if answer == nil {
			w.Write([]byte("{}"))
			return
		}
		answer(w, string(b))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) target() Target {
	return Target{
		URL:    s.URL,
		Header: http.Header{"X-Test": {"yes"}},
		Body:   func(i int) []byte { return []byte(strconv.Itoa(i)) },
	}
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.arrivals)
}

func TestConstantRate(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := NewClient(8, 5*time.Second)
	r, err := ConstantRate(t.Context(), c, s.target(), RateConfig{PerSecond: 400, Duration: 250 * time.Millisecond, MaxInFlight: 8, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scheduled != 100 || r.Sent != 100 || r.OK != 100 || r.Errors != 0 || r.Unsent != 0 {
		t.Errorf("scheduled, sent, ok, errors, unsent = %d, %d, %d, %d, %d; want 100, 100, 100, 0, 0",
			r.Scheduled, r.Sent, r.OK, r.Errors, r.Unsent)
	}
	if got := r.Latency.Count(); got != 100 {
		t.Errorf("latencies recorded: %d, want 100", got)
	}
	if r.Statuses[200] != 100 {
		t.Errorf("statuses = %v, want 100 × 200", r.Statuses)
	}
	if got := s.count(); got != 100 {
		t.Errorf("server saw %d requests, want 100", got)
	}
	// Request i is due at i × 2.5ms: the last at 247.5ms. None is early.
	s.mu.Lock()
	span := s.arrivals[len(s.arrivals)-1].Sub(s.arrivals[0])
	seen := map[string]bool{}
	for _, b := range s.bodies {
		seen[b] = true
	}
	s.mu.Unlock()
	if span < 240*time.Millisecond {
		t.Errorf("requests arrived within %v, want them spread over about 247.5ms", span)
	}
	if r.Elapsed < 247*time.Millisecond {
		t.Errorf("elapsed %v, want at least 247.5ms", r.Elapsed)
	}
	if len(seen) != 100 || !seen["0"] || !seen["99"] {
		t.Errorf("server saw %d distinct bodies, want bodies 0 to 99", len(seen))
	}
}

// TestConstantRateCountsFromSchedule checks the correction for coordinated
// omission: with one request in flight at a time and a 20ms server, the
// requests due every millisecond wait their turn, and that wait is part of
// their latency.
func TestConstantRateCountsFromSchedule(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(w http.ResponseWriter, _ string) {
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("{}"))
	})
	c := NewClient(1, 5*time.Second)
	r, err := ConstantRate(t.Context(), c, s.target(), RateConfig{PerSecond: 1000, Duration: 20 * time.Millisecond, MaxInFlight: 1, Grace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 20 || r.Unsent != 0 {
		t.Fatalf("ok, unsent = %d, %d; want 20, 0", r.OK, r.Unsent)
	}
	// The last request is due at 19ms and cannot end before 20 × 20ms.
	if got := r.Latency.Max(); got < 380*time.Millisecond {
		t.Errorf("max latency %v, want at least 380ms: the wait for a slot must count", got)
	}
	if got := r.Lag.Max(); got < 360*time.Millisecond {
		t.Errorf("max lag %v, want at least 360ms", got)
	}
	if got := r.Service.Min(); got < 20*time.Millisecond {
		t.Errorf("min service time %v, want at least the server's 20ms", got)
	}
	if r.Latency.Percentile(50) <= r.Service.Percentile(50) {
		t.Errorf("median latency %v not above median service time %v", r.Latency.Percentile(50), r.Service.Percentile(50))
	}
}

// TestConstantRateUnsent checks that requests held up past Duration+Grace
// by the in-flight bound are counted, not sent.
func TestConstantRateUnsent(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(w http.ResponseWriter, _ string) {
		time.Sleep(300 * time.Millisecond)
		w.Write([]byte("{}"))
	})
	c := NewClient(1, 5*time.Second)
	r, err := ConstantRate(t.Context(), c, s.target(), RateConfig{PerSecond: 100, Duration: 50 * time.Millisecond, MaxInFlight: 1, Grace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scheduled != 5 || r.Sent != 1 || r.OK != 1 || r.Unsent != 4 {
		t.Errorf("scheduled, sent, ok, unsent = %d, %d, %d, %d; want 5, 1, 1, 4", r.Scheduled, r.Sent, r.OK, r.Unsent)
	}
}

func TestConstantRateErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(w http.ResponseWriter, body string) {
		if i, _ := strconv.Atoi(body); i%2 == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("{}"))
	})
	c := NewClient(4, 5*time.Second)
	r, err := ConstantRate(t.Context(), c, s.target(), RateConfig{PerSecond: 500, Duration: 40 * time.Millisecond, MaxInFlight: 4, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 20 || r.OK != 10 || r.Errors != 10 || r.Statuses[200] != 10 || r.Statuses[503] != 10 {
		t.Errorf("sent, ok, errors, statuses = %d, %d, %d, %v; want 20, 10, 10, map[200:10 503:10]", r.Sent, r.OK, r.Errors, r.Statuses)
	}
	if r.FirstError != "503 Service Unavailable" {
		t.Errorf("first error %q, want %q", r.FirstError, "503 Service Unavailable")
	}
	if r.Latency.Count() != 10 {
		t.Errorf("latencies recorded: %d, want 10 (answered requests only)", r.Latency.Count())
	}
}

func TestConstantRateTransportError(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	tgt := s.target()
	s.Close()
	r, err := ConstantRate(t.Context(), NewClient(2, time.Second), tgt, RateConfig{PerSecond: 1000, Duration: 3 * time.Millisecond, MaxInFlight: 2, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 3 || r.Errors != 3 || r.Statuses[0] != 3 || r.FirstError == "" {
		t.Errorf("sent, errors, statuses, first error = %d, %d, %v, %q; want 3, 3, map[0:3], a connection error", r.Sent, r.Errors, r.Statuses, r.FirstError)
	}
}

func TestConstantRateCancelled(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r, err := ConstantRate(ctx, NewClient(2, time.Second), s.target(), RateConfig{PerSecond: 100, Duration: time.Second, MaxInFlight: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// Request 0 is due at once; whether it went out before the run saw the
	// cancellation is a race, the rest were never sent.
	if r.Sent+r.Unsent != 100 || r.Unsent < 99 {
		t.Errorf("sent, unsent = %d, %d; want at most 1 sent of 100", r.Sent, r.Unsent)
	}
}

func TestSaturate(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := NewClient(4, 5*time.Second)
	r, err := Saturate(t.Context(), c, s.target(), SaturateConfig{Workers: 4, Duration: 150 * time.Millisecond, MaxRequests: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK == 0 || r.Errors != 0 || r.OK != r.Sent || r.Sent != s.count() {
		t.Errorf("sent, ok, errors = %d, %d, %d, server saw %d; want all sent answered without error", r.Sent, r.OK, r.Errors, s.count())
	}
	if r.Elapsed < 150*time.Millisecond || r.Throughput() <= 0 {
		t.Errorf("elapsed %v, throughput %v; want at least 150ms and above 0", r.Elapsed, r.Throughput())
	}
	if r.Latency.Count() != uint64(r.OK) {
		t.Errorf("latencies recorded: %d, want %d", r.Latency.Count(), r.OK)
	}
}

func TestSaturateMaxRequests(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	r, err := Saturate(t.Context(), NewClient(3, 5*time.Second), s.target(), SaturateConfig{Workers: 3, Duration: 10 * time.Second, MaxRequests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 10 || r.OK != 10 || s.count() != 10 {
		t.Errorf("sent, ok = %d, %d, server saw %d; want 10 each", r.Sent, r.OK, s.count())
	}
	if r.Elapsed > 5*time.Second {
		t.Errorf("elapsed %v: the run did not stop at MaxRequests", r.Elapsed)
	}
}

func TestInvalidConfig(t *testing.T) {
	t.Parallel()
	tgt := Target{URL: "http://127.0.0.1:1", Body: func(int) []byte { return nil }}
	c := NewClient(1, time.Second)
	rate := func(cfg RateConfig) error { _, err := ConstantRate(t.Context(), c, tgt, cfg); return err }
	sat := func(cfg SaturateConfig) error { _, err := Saturate(t.Context(), c, tgt, cfg); return err }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"zero rate", rate(RateConfig{Duration: time.Second, MaxInFlight: 1}), "rate 0: want a positive number of requests per second"},
		{"zero duration", rate(RateConfig{PerSecond: 1, MaxInFlight: 1}), "duration 0s: want a positive duration"},
		{"no slot", rate(RateConfig{PerSecond: 1, Duration: time.Second}), "max in flight 0: want at least 1"},
		{"negative grace", rate(RateConfig{PerSecond: 1, Duration: time.Second, MaxInFlight: 1, Grace: -1}), "grace -1ns: want zero or more"},
		{"too many", rate(RateConfig{PerSecond: 1e6, Duration: time.Hour, MaxInFlight: 1}), "1e+06 requests/s for 1h0m0s: 3600000000 requests is over the bound of 1e8"},
		{"no workers", sat(SaturateConfig{Duration: time.Second, MaxRequests: 1}), "workers 0: want at least 1"},
		{"saturate zero duration", sat(SaturateConfig{Workers: 1, MaxRequests: 1}), "duration 0s: want a positive duration"},
		{"no requests", sat(SaturateConfig{Workers: 1, Duration: time.Second}), "max requests 0: want at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.err == nil || tt.err.Error() != tt.want {
				t.Errorf("error %v, want %q", tt.err, tt.want)
			}
		})
	}
}

func TestDue(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := RateConfig{PerSecond: 3}
	tests := []struct {
		i    int
		want time.Duration
	}{
		{0, 0},
		{1, 333333333},
		{2, 666666667},
		{3, time.Second},
		{3000, 1000 * time.Second}, // no drift from summed intervals
	}
	for _, tt := range tests {
		if got := cfg.due(start, tt.i).Sub(start); got != tt.want {
			t.Errorf("due(%d) = start+%v, want start+%v", tt.i, got, tt.want)
		}
	}
}
