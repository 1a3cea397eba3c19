// Package watchdogtest is the conformance suite of watchdog.Store: what
// every store must do for the watchdog to count a session's calls
// exactly, whichever server (function instance) sees them.
package watchdogtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/internal/suite"
	"github.com/wardenhq/warden/shared/watchdog"
)

// Run checks a Store through watchdogs sharing it, as servers do.
func Run(t *testing.T, newStore func(t *testing.T) watchdog.Store) {
	suite.Run(t, newStore, []suite.Case[watchdog.Store]{
		{Name: "UpstreamErrorsAcrossServers", Run: testUpstreamErrors},
		{Name: "RepeatedCallsAndReset", Run: testRepeatedCallsAndReset},
		{Name: "TokensPerMinute", Run: testTokensPerMinute},
		{Name: "ConcurrentCallsCountedOnce", Run: testConcurrent},
	})
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func load(t *testing.T, wd string) *policy.Policy {
	t.Helper()
	p, err := policy.Load("p.yaml", []byte("version: 1\nwatchdog: "+wd+"\n"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

// servers are n watchdogs on one store.
func servers(s watchdog.Store, n int) []*watchdog.Watchdog {
	out := make([]*watchdog.Watchdog, n)
	for i := range out {
		out[i] = watchdog.New(watchdog.Config{Store: s})
	}
	return out
}

// run observes each event on the next server in turn and returns the
// trips as "event N: level signal count" lines.
func run(t *testing.T, ws []*watchdog.Watchdog, pol *policy.Policy, events []watchdog.Event) string {
	t.Helper()
	var lines []string
	for i, e := range events {
		trips, err := ws[i%len(ws)].Observe(context.Background(), pol, e)
		if err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
		for _, tr := range trips {
			lines = append(lines, fmt.Sprintf("event %d: %s %s %d", i+1, tr.Level, tr.Signal, tr.Count))
		}
	}
	return strings.Join(lines, "\n")
}

func event(kind watchdog.Kind, session string, at time.Time) watchdog.Event {
	return watchdog.Event{Kind: kind, Session: session, Project: "project-a", Agent: "claude", Time: at}
}

// testUpstreamErrors: the classic loop, its 429s served by three servers
// in turn: one alert at the 10th, one pause at the 20th, as on one.
func testUpstreamErrors(t *testing.T, s watchdog.Store) {
	pol := load(t, "{upstream_errors: {alert: 10, pause: 20}, window: 2m}")
	var evs []watchdog.Event
	for i := range 25 {
		e := event(watchdog.UpstreamResult, "s1", t0.Add(time.Duration(i)*time.Second))
		e.Status = 429
		evs = append(evs, e)
	}
	got := run(t, servers(s, 3), pol, evs)
	if want := "event 10: alert upstream_errors 10\nevent 20: pause upstream_errors 20"; got != want {
		t.Errorf("trips:\n%s\nwant:\n%s", got, want)
	}
}

// testRepeatedCallsAndReset: the same request on two servers in turn
// alerts at 3 and pauses at 5; once reset (a human resumed the session)
// the counts start over.
func testRepeatedCallsAndReset(t *testing.T, s watchdog.Store) {
	pol := load(t, "{repeated_calls: {alert: 3, pause: 5}, window: 10m}")
	ws := servers(s, 2)
	req := func(i int) watchdog.Event {
		e := event(watchdog.Request, "s2", t0.Add(time.Duration(i)*time.Second))
		e.Fingerprint = watchdog.Fingerprint("tool:Bash", "make test", []byte(`{"command":"make test"}`))
		return e
	}
	var evs []watchdog.Event
	for i := range 5 {
		evs = append(evs, req(i))
	}
	if got, want := run(t, ws, pol, evs), "event 3: alert repeated_calls 3\nevent 5: pause repeated_calls 5"; got != want {
		t.Errorf("trips:\n%s\nwant:\n%s", got, want)
	}
	if err := ws[1].Reset(context.Background(), "s2"); err != nil {
		t.Fatal(err)
	}
	evs = evs[:0]
	for i := range 3 {
		evs = append(evs, req(10+i))
	}
	if got, want := run(t, ws, pol, evs), "event 3: alert repeated_calls 3"; got != want {
		t.Errorf("after the reset, trips:\n%s\nwant:\n%s", got, want)
	}
}

// testTokensPerMinute: tokens counted by the second, kept between servers.
func testTokensPerMinute(t *testing.T, s watchdog.Store) {
	pol := load(t, "{tokens_per_minute: {alert: 1000, pause: 2000}, window: 2m}")
	var evs []watchdog.Event
	for i := range 4 {
		e := event(watchdog.Tokens, "s3", t0.Add(time.Duration(i)*time.Second))
		e.Tokens = 600
		evs = append(evs, e)
	}
	if got, want := run(t, servers(s, 2), pol, evs), "event 2: alert tokens_per_minute 1200\nevent 4: pause tokens_per_minute 2400"; got != want {
		t.Errorf("trips:\n%s\nwant:\n%s", got, want)
	}
}

// testConcurrent: fifteen servers see the same request of one session at
// once (an agent's parallel tool calls); each is counted once, so exactly
// one alert and one pause fire.
func testConcurrent(t *testing.T, s watchdog.Store) {
	pol := load(t, "{repeated_calls: {alert: 5, pause: 10}, window: 1h}")
	var mu sync.Mutex
	fired := map[watchdog.Level]int{}
	var errs []error
	var wg sync.WaitGroup
	for i, w := range servers(s, 15) {
		wg.Go(func() {
			e := event(watchdog.Request, "s4", t0.Add(time.Duration(i)*time.Millisecond))
			e.Fingerprint = "same"
			trips, err := w.Observe(context.Background(), pol, e)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			for _, tr := range trips {
				fired[tr.Level]++
			}
		})
	}
	wg.Wait()
	if len(errs) != 0 || fired[watchdog.LevelAlert] != 1 || fired[watchdog.LevelPause] != 1 {
		t.Errorf("fired %v, errors %v; want one alert and one pause", fired, errs)
	}
}
