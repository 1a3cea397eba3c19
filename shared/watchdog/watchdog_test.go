package watchdog

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/policy/examples"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/notify"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func load(t testing.TB, watchdog string) *policy.Policy {
	t.Helper()
	p, err := policy.Load("p.yaml", []byte("version: 1\nwatchdog: "+watchdog+"\n"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func example(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Load("policy.yaml", examples.Policy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// brief formats trips as "call N: level signal count", one per line.
type recorder struct {
	lines []string
	trips []Trip
}

func (r *recorder) add(call int, trips []Trip) {
	for _, tr := range trips {
		r.lines = append(r.lines, fmt.Sprintf("call %d: %s %s %d", call, tr.Level, tr.Signal, tr.Count))
		r.trips = append(r.trips, tr)
	}
}

func (r *recorder) String() string { return strings.Join(r.lines, "\n") }

func ev(kind Kind, at time.Time) Event {
	return Event{Kind: kind, Session: "d97e2169", Project: "project-a", Agent: "claude", Time: at}
}

// TestClassicLoop is the case: 73 calls in 19 minutes, all
// answered 429. The example policy alerts at 10 errors in a row and pauses
// at 20, and nothing else trips: each call differs from the last (the
// conversation grows), the rate is 4 a minute.
func TestClassicLoop(t *testing.T) {
	t.Parallel()
	pol := example(t)
	w := New(Config{})
	var r recorder
	step := 19 * time.Minute / 72
	for i := range 73 {
		at := t0.Add(time.Duration(i) * step)
		req := ev(Request, at)
		req.Fingerprint = Fingerprint("llm:invoke", "anthropic/claude-sonnet-4-5", fmt.Appendf(nil, `{"messages":%d}`, i))
		req.Started = t0
		r.add(i+1, obs(w, pol, req))
		res := ev(UpstreamResult, at.Add(time.Second))
		res.Status = 429
		r.add(i+1, obs(w, pol, res))
	}
	want := "call 10: alert upstream_errors 10\ncall 20: pause upstream_errors 20"
	if r.String() != want {
		t.Fatalf("trips:\n%s\nwant:\n%s", r.String(), want)
	}
	alert, pause := r.trips[0], r.trips[1]
	if got := alert.Message; got != "watchdog: session d97e2169 got 10 upstream errors in a row (429), alert level 10; it is paused at 20" {
		t.Errorf("alert message %q", got)
	}
	if got := pause.Message; got != "watchdog: session d97e2169 got 20 upstream errors in a row (429), pause level 20; it is paused until a human resumes it" {
		t.Errorf("pause message %q", got)
	}
	if alert.Threshold != 10 || alert.Next != 20 || pause.Threshold != 20 || pause.Next != 0 ||
		alert.Project != "project-a" || alert.Agent != "claude" || !alert.At.Equal(t0.Add(9*step+time.Second)) ||
		strings.Join(alert.Notify, ",") != "ops-slack" {
		t.Errorf("alert %+v\npause %+v", alert, pause)
	}
}

// TestRepeatedCalls: the same request, again and again, alerts at 10 and
// pauses at 20 (the example's levels) — once each.
func TestRepeatedCalls(t *testing.T) {
	t.Parallel()
	pol := example(t)
	w := New(Config{})
	var r recorder
	fp := Fingerprint("tool:Bash", "npm test", []byte(`{"command":"npm test"}`))
	for i := range 22 {
		e := ev(Request, t0.Add(time.Duration(i)*5*time.Second))
		e.Fingerprint = fp
		r.add(i+1, obs(w, pol, e))
		other := ev(Request, t0.Add(time.Duration(i)*5*time.Second+time.Second))
		other.Fingerprint = Fingerprint("tool:Read", fmt.Sprint("file", i), nil)
		r.add(i+1, obs(w, pol, other))
	}
	if want := "call 10: alert repeated_calls 10\ncall 20: pause repeated_calls 20"; r.String() != want {
		t.Fatalf("trips:\n%s\nwant:\n%s", r.String(), want)
	}
	if got := r.trips[0].Message; got != "watchdog: session d97e2169 made the same request 10 times in 2m, alert level 10; it is paused at 20" {
		t.Errorf("message %q", got)
	}
}

// TestRepeatedCallsWindow: calls spread wider than the window never add up.
func TestRepeatedCallsWindow(t *testing.T) {
	t.Parallel()
	pol := load(t, "{repeated_calls: {alert: 3, pause: 5}, window: 1m}")
	w := New(Config{})
	var r recorder
	for i := range 30 {
		e := ev(Request, t0.Add(time.Duration(i)*25*time.Second)) // at most 3 in any minute
		e.Fingerprint = "same"
		r.add(i+1, obs(w, pol, e))
	}
	if want := "call 3: alert repeated_calls 3"; r.String() != want {
		t.Fatalf("trips:\n%s\nwant:\n%s", r.String(), want)
	}
}

func TestOnceUntilClearedAndWindowPassed(t *testing.T) {
	t.Parallel()
	pol := load(t, "{upstream_errors: {alert: 3, pause: 100}, window: 5m}")
	w := New(Config{})
	var r recorder
	call := 0
	at := t0
	streak := func(n int, status int) {
		for range n {
			call++
			at = at.Add(10 * time.Second)
			e := ev(UpstreamResult, at)
			e.Status = status
			r.add(call, obs(w, pol, e))
		}
	}
	streak(5, 503) // alert at call 3
	streak(1, 200) // the streak breaks
	streak(5, 429) // within 5m of the alert: quiet
	at = at.Add(5 * time.Minute)
	streak(1, 200)
	streak(4, 0) // cleared and the window passed: alerts again
	want := "call 3: alert upstream_errors 3\ncall 15: alert upstream_errors 3"
	if r.String() != want {
		t.Fatalf("trips:\n%s\nwant:\n%s", r.String(), want)
	}
	if got := r.trips[1].Message; got != "watchdog: session d97e2169 got 3 upstream errors in a row (no answer), alert level 3; it is paused at 100" {
		t.Errorf("message %q", got)
	}
	// Without the streak breaking, the window passing does not re-arm.
	pol2 := load(t, "{upstream_errors: {alert: 3}, window: 1m}")
	w2 := New(Config{})
	n := 0
	for i := range 100 {
		e := ev(UpstreamResult, t0.Add(time.Duration(i)*30*time.Second))
		e.Status = []int{429, 503, 500}[i%3]
		trips := obs(w2, pol2, e)
		n += len(trips)
		if i == 2 && (len(trips) != 1 || trips[0].Message != "watchdog: session d97e2169 got 3 upstream errors in a row (429, 503, 500), alert level 3") {
			t.Errorf("trips at the third error: %+v", trips)
		}
	}
	if n != 1 {
		t.Errorf("%d trips over a 100-error streak, want 1", n)
	}
}

func TestTokensPerMinute(t *testing.T) {
	t.Parallel()
	pol := example(t) // tokens_per_minute: {alert: 200000, pause: 500000}
	w := New(Config{})
	var r recorder
	for i := range 8 {
		e := ev(Tokens, t0.Add(time.Duration(i)*5*time.Second))
		e.Tokens = 100_000
		r.add(i+1, obs(w, pol, e))
	}
	if want := "call 2: alert tokens_per_minute 200000\ncall 5: pause tokens_per_minute 500000"; r.String() != want {
		t.Fatalf("trips:\n%s\nwant:\n%s", r.String(), want)
	}
	if got := r.trips[0].Message; got != "watchdog: session d97e2169 used 200,000 tokens in the last minute, alert level 200,000; it is paused at 500,000" {
		t.Errorf("message %q", got)
	}
	// The minute slides: 150,000 tokens every 61 s never reach 200,000 in a minute.
	w2 := New(Config{})
	for i := range 20 {
		e := ev(Tokens, t0.Add(time.Duration(i)*61*time.Second))
		e.Tokens = 150_000
		if trips := obs(w2, pol, e); trips != nil {
			t.Fatalf("event %d tripped %+v", i, trips)
		}
	}
}

// TestJumpOverBothLevels: one event past both levels reports the pause only.
func TestJumpOverBothLevels(t *testing.T) {
	t.Parallel()
	pol := example(t)
	w := New(Config{})
	e := ev(Tokens, t0)
	e.Tokens = 600_000
	trips := obs(w, pol, e)
	if len(trips) != 1 || trips[0].Level != LevelPause || trips[0].Count != 600_000 || trips[0].Threshold != 500_000 {
		t.Fatalf("trips %+v", trips)
	}
	e.Time = e.Time.Add(time.Second)
	if trips := obs(w, pol, e); trips != nil {
		t.Fatalf("the alert came after the pause: %+v", trips)
	}
}

func TestRequestsPerMinuteAndDenials(t *testing.T) {
	t.Parallel()
	pol := load(t, "{max_requests_per_minute: 10, max_consecutive_denials: {alert: 2, pause: 4}, on_trip: kill}")
	w := New(Config{})
	var r recorder
	for i := range 12 {
		e := ev(Request, t0.Add(time.Duration(i)*time.Second))
		e.Denied = i >= 5 && i != 7
		r.add(i+1, obs(w, pol, e))
	}
	want := "call 5: alert max_requests_per_minute 5\n" +
		"call 7: alert max_consecutive_denials 2\n" +
		"call 10: kill max_requests_per_minute 10\n" +
		"call 12: kill max_consecutive_denials 4"
	if r.String() != want {
		t.Fatalf("trips:\n%s\nwant:\n%s", r.String(), want)
	}
	msgs := []string{
		"watchdog: session d97e2169 made 5 requests in the last minute, alert level 5; it is killed at 10",
		"watchdog: session d97e2169 was denied 2 times in a row, alert level 2; it is killed at 4",
		"watchdog: session d97e2169 made 10 requests in the last minute, pause level 10 with on_trip: kill; it is killed",
		"watchdog: session d97e2169 was denied 4 times in a row, pause level 4 with on_trip: kill; it is killed",
	}
	for i, m := range msgs {
		if r.trips[i].Message != m {
			t.Errorf("message %d %q, want %q", i, r.trips[i].Message, m)
		}
	}
}

func TestSessionDuration(t *testing.T) {
	t.Parallel()
	pol := load(t, "{max_session_duration: 8h, notify: []}")
	w := New(Config{})
	e := ev(Request, t0.Add(8*time.Hour))
	e.Started = t0
	if trips := obs(w, pol, e); trips != nil {
		t.Fatalf("tripped at exactly 8h: %+v", trips)
	}
	e.Time = e.Time.Add(90 * time.Second)
	trips := obs(w, pol, e)
	if len(trips) != 1 || trips[0].Level != LevelPause || trips[0].Signal != SessionDuration ||
		trips[0].Message != "watchdog: session d97e2169 has run for 8h1m30s, longer than max_session_duration 8h; it is paused until a human resumes it" {
		t.Fatalf("trips %+v", trips)
	}
	e.Time = e.Time.Add(time.Hour)
	if trips := obs(w, pol, e); trips != nil {
		t.Fatalf("tripped twice: %+v", trips)
	}
}

func TestReset(t *testing.T) {
	t.Parallel()
	pol := load(t, "{upstream_errors: {alert: 2, pause: 3}}")
	w := New(Config{})
	var r recorder
	for i := range 8 {
		if i == 4 {
			w.Reset(context.Background(), "d97e2169") // a human resumed the session
		}
		e := ev(UpstreamResult, t0.Add(time.Duration(i)*time.Second))
		e.Status = 529
		r.add(i+1, obs(w, pol, e))
	}
	want := "call 2: alert upstream_errors 2\ncall 3: pause upstream_errors 3\ncall 6: alert upstream_errors 2\ncall 7: pause upstream_errors 3"
	if r.String() != want {
		t.Fatalf("trips:\n%s\nwant:\n%s", r.String(), want)
	}
}

func TestSessionsAreSeparate(t *testing.T) {
	t.Parallel()
	pol := load(t, "{upstream_errors: 4}")
	w := New(Config{})
	var r recorder
	for i := range 6 {
		for _, s := range []string{"a", "b"} {
			e := Event{Kind: UpstreamResult, Session: s, Time: t0.Add(time.Duration(i) * time.Second), Status: 500}
			if s == "b" && i%2 == 1 {
				e.Status = 200
			}
			for _, tr := range obs(w, pol, e) {
				r.lines = append(r.lines, fmt.Sprintf("%s %d: %s %d", s, i+1, tr.Level, tr.Count))
			}
		}
	}
	if want := "a 2: alert 2\na 4: pause 4"; r.String() != want {
		t.Fatalf("trips:\n%s\nwant:\n%s", r.String(), want)
	}
}

func TestNoWatchdog(t *testing.T) {
	t.Parallel()
	w := New(Config{})
	p, err := policy.Load("p.yaml", []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := ev(UpstreamResult, t0)
	e.Status = 500
	for range 100 {
		if obs(w, p, e) != nil || obs(w, nil, e) != nil {
			t.Fatal("tripped without a watchdog")
		}
	}
	if obs(w, example(t), Event{Kind: Request, Time: t0}) != nil || w.Len() != 0 {
		t.Error("an event without a session was tracked")
	}
}

func TestBounded(t *testing.T) {
	t.Parallel()
	pol := load(t, "{repeated_calls: {alert: 50, pause: 100}, window: 1h}")
	w := New(Config{MaxSessions: 3, MaxFingerprints: 4, IdleAfter: time.Minute})
	for i := range 10 {
		obs(w, pol, Event{Kind: Request, Session: fmt.Sprint("s", i), Time: t0, Fingerprint: "f"})
	}
	if w.Len() != 3 {
		t.Errorf("%d sessions, want 3", w.Len())
	}
	w.mem.mu.Lock()
	for _, id := range []string{"s7", "s8", "s9"} {
		if _, ok := w.mem.sessions[id]; !ok {
			t.Errorf("session %s, among the most recent, was forgotten", id)
		}
	}
	w.mem.mu.Unlock()
	// Idle sessions go, down to the window (1h here, longer than IdleAfter).
	obs(w, pol, Event{Kind: Request, Session: "s9", Time: t0.Add(59 * time.Minute)})
	if w.Len() != 3 {
		t.Errorf("%d sessions after 59m, want 3", w.Len())
	}
	obs(w, pol, Event{Kind: Request, Session: "s9", Time: t0.Add(61 * time.Minute)})
	if w.Len() != 1 {
		t.Errorf("%d sessions after 61m, want 1", w.Len())
	}
	// Fingerprints per session and timestamps per fingerprint are capped.
	long := strings.Repeat("x", 10_000)
	for i := range 1000 {
		obs(w, pol, Event{Kind: Request, Session: "s9", Time: t0.Add(61*time.Minute + time.Duration(i)*time.Millisecond),
			Fingerprint: fmt.Sprint(long, i%7)})
	}
	w.mem.mu.Lock()
	s := w.mem.sessions["s9"].Value.(*Session)
	if len(s.calls) != 4 {
		t.Errorf("%d fingerprints kept, want 4", len(s.calls))
	}
	for fp, c := range s.calls {
		if len(fp) > maxFingerprint || len(c.times) > 100 {
			t.Errorf("fingerprint of %d bytes with %d times", len(fp), len(c.times))
		}
	}
	w.mem.mu.Unlock()
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	pol := load(t, "{upstream_errors: {alert: 100, pause: 400}, max_requests_per_minute: 100000}")
	w := New(Config{MaxSessions: 8})
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := map[Level]int{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				e := Event{Kind: UpstreamResult, Session: fmt.Sprint("s", g%4), Time: t0.Add(time.Duration(i) * time.Millisecond), Status: 503}
				for _, tr := range obs(w, pol, e) {
					mu.Lock()
					count[tr.Level]++
					mu.Unlock()
				}
				obs(w, pol, Event{Kind: Request, Session: fmt.Sprint("s", g), Time: e.Time})
			}
		})
	}
	wg.Wait()
	// Four sessions, each with 1,000 errors in a row: one alert and one
	// pause each.
	if count[LevelAlert] != 4 || count[LevelPause] != 4 {
		t.Errorf("trips %v, want 4 alerts and 4 pauses", count)
	}
}

func TestRecordAndNotification(t *testing.T) {
	t.Parallel()
	tr := Trip{Level: LevelAlert, Signal: UpstreamErrors, Count: 10, Threshold: 10, Next: 20,
		Session: "d97e2169", Project: "project-a", Agent: "claude", At: t0, Notify: []string{"ops-slack"},
		Message: "watchdog: session d97e2169 got 10 upstream errors in a row (429), alert level 10; it is paused at 20"}
	rec := tr.Record()
	if rec.Code != audit.WatchdogAlert || rec.Session != "d97e2169" || rec.Project != "project-a" || rec.Agent != "claude" ||
		rec.Reason != tr.Message || rec.Resource != "upstream_errors" || rec.Actor != "watchdog" || !rec.Time.Equal(t0) || rec.ID == "" {
		t.Errorf("record %+v", rec)
	}
	m := tr.Notification()
	want := notify.Message{Event: "watchdog.alert", Title: "Watchdog alert: session d97e2169", Text: tr.Message, Severity: notify.Warning, Time: t0,
		Fields: []notify.Field{{Name: "project", Value: "project-a"}, {Name: "agent", Value: "claude"}, {Name: "session", Value: "d97e2169"},
			{Name: "signal", Value: "upstream_errors"}, {Name: "count", Value: "10"}, {Name: "alert level", Value: "10"}}}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("notification\n%+v\nwant\n%+v", m, want)
	}
	for lv, code := range map[Level]audit.Code{LevelPause: audit.WatchdogPaused, LevelKill: audit.SessionKilled} {
		tr.Level = lv
		if tr.Record().Code != code || tr.Notification().Severity != notify.Critical {
			t.Errorf("%s: record %s, severity %s", lv, tr.Record().Code, tr.Notification().Severity)
		}
	}
	tr.Level = LevelKill // the loop above ran in map order
	if got := tr.Notification().Title; got != "Session d97e2169 killed by the watchdog" {
		t.Errorf("title %q", got)
	}
	if Signal(42).String() != "signal(42)" || SessionDuration.String() != "max_session_duration" {
		t.Error("signal names")
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	a := Fingerprint("tool:Bash", "ls", []byte(`{"command":"ls"}`))
	if len(a) != 32 || a != Fingerprint("tool:Bash", "ls", []byte(`{"command":"ls"}`)) {
		t.Errorf("fingerprint %q", a)
	}
	// Moving bytes between the parts changes the fingerprint.
	if Fingerprint("ab", "c", nil) == Fingerprint("a", "bc", nil) || Fingerprint("a", "", []byte("b")) == Fingerprint("a", "b", nil) {
		t.Error("fingerprints of different requests collide")
	}
}

// BenchmarkObserve measures the per-event cost on the hot path, with the
// example policy and 1,000 sessions.
func BenchmarkObserve(b *testing.B) {
	pol := example(b)
	w := New(Config{})
	fps := make([]string, 16)
	for i := range fps {
		fps[i] = Fingerprint("tool:Bash", fmt.Sprint("cmd", i), nil)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := Event{Kind: Kind(i%3 + 1), Session: fmt.Sprint("s", i%1000), Time: t0.Add(time.Duration(i) * time.Millisecond),
			Fingerprint: fps[i%16], Status: 200, Tokens: 1000}
		obs(w, pol, e)
		i++
	}
}

// obs is Observe on the memory store, which does not fail.
func obs(w *Watchdog, pol *policy.Policy, e Event) []Trip {
	trips, err := w.Observe(context.Background(), pol, e)
	if err != nil {
		panic(err)
	}
	return trips
}
