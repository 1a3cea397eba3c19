// Package watchdog detects runaway agent sessions — the same request over
// and over, a provider answering 429 or 5xx call after call, tokens burnt
// at a rate no person would — and says when to alert and when to stop
// them, by the thresholds of the policy's watchdog: declaration.
//
// Each signal has two levels. At the alert level the watchdog reports an
// alert (an audit record and a notification); at the pause level it
// reports that the session must be paused (or killed, with on_trip: kill)
// until a human resumes it. The classic case, 73 calls in 19 minutes all
// answered 429, with upstream_errors: {alert: 10, pause: 20}: one alert at
// the 10th call, one pause at the 20th, nothing else.
//
// A level fires once: it is quiet until its signal has fallen back below
// it (a success broke the streak, the rate dropped) and the policy's
// window has passed since it fired. Reset, when a human resumes a session,
// starts the session over.
//
// The watchdog keeps each session's counts in a Store, bounded: at most
// Config.MaxFingerprints distinct requests per session, and at most
// policy.MaxRepeatedCalls timestamps per request. The default store is
// this process's memory, which holds at most Config.MaxSessions sessions
// (the least recently seen are forgotten first, as are sessions idle for
// Config.IdleAfter); a restart forgets the counts, never a pause, which
// the session store keeps. Servers that share their sessions (the Lambda
// functions) share a store (DynamoDB). It reads no clock: every Event
// carries its time.
//
// # How the gateway calls it
//
// After the pipeline authenticated the session (a paused or killed session
// is refused before any of this), with pol the policy the request was
// decided under and sess the verdict's session, the gateway makes three
// calls. Every request, once the pipeline decided it, allowed or not:
//
//	trips, err := wd.Observe(ctx, pol, watchdog.Event{Kind: watchdog.Request,
//		Session: sess.ID, Project: sess.Project, Agent: sess.Agent,
//		Time: now, Started: sess.CreatedAt,
//		Fingerprint: watchdog.Fingerprint(req.Action, req.Resource, argsJSON),
//		Denied: verdict.Decision.Effect == policy.Deny})
//
// Every model call, as soon as the provider's status is known (before the
// body streams; Status 0 when the call got no answer at all):
//
//	trips, err := wd.Observe(ctx, pol, watchdog.Event{Kind: watchdog.UpstreamResult,
//		Session: sess.ID, Project: sess.Project, Agent: sess.Agent,
//		Time: now, Status: resp.StatusCode})
//
// Every model call's settled usage (input + output + cache tokens):
//
//	trips, err := wd.Observe(ctx, pol, watchdog.Event{Kind: watchdog.Tokens,
//		Session: sess.ID, Project: sess.Project, Agent: sess.Agent,
//		Time: now, Tokens: total})
//
// For each trip, in order: append t.Record() to the audit trail
// (watchdog.alert, watchdog.paused, or session.killed by "watchdog"); for
// LevelPause, identity.Service.PauseSession(ctx, sess.ID, "watchdog",
// t.Message), after which Authenticate refuses the session until a human
// resumes it; for LevelKill, identity.Service.KillSession(ctx, sess.ID,
// "watchdog", t.Message); a request whose own event tripped a pause or a
// kill is not acted on either (answer 403 with t.Message); then
// notifier.Enqueue(t.Notify, t.Notification()). A request whose event
// could not be counted (err: the store failed) is not acted on either.
// Before a human resumes a session (identity.Service.ResumeSession), call
// wd.Reset(ctx, sess.ID).
package watchdog

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/wardenhq/warden/policy"
)

// Kind is what an Event reports.
type Kind int

// Event kinds.
const (
	// Request is one request of the session, decided by the pipeline.
	Request Kind = iota + 1
	// UpstreamResult is the status a provider answered a model call with.
	UpstreamResult
	// Tokens is the usage of a model call, once settled.
	Tokens
)

// Event is one thing a session did, as the gateway saw it.
type Event struct {
	Kind                    Kind
	Session, Project, Agent string
	// Time is when it happened. The watchdog reads no clock.
	Time time.Time
	// Started is when the session began, for max_session_duration; zero
	// when unknown.
	Started time.Time

	// Fingerprint identifies the request (Request): the same action,
	// resource and arguments give the same fingerprint (see Fingerprint).
	// Empty: the request is not counted for repeated_calls.
	Fingerprint string
	// Denied is true when the policy denied the request (Request).
	Denied bool
	// Status is the provider's HTTP status (UpstreamResult); 0 when the
	// call got no answer. 429, 5xx and 0 extend the streak of upstream
	// errors, anything else ends it.
	Status int
	// Tokens used by the call (Tokens): input, output and cache.
	Tokens int64
}

// Fingerprint returns the request fingerprint for Event: a hash of the
// action, the resource and the arguments (e.g. the tool input as JSON).
func Fingerprint(action, resource string, args []byte) string {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(action), []byte(resource), args} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// maxFingerprint bounds a fingerprint kept as given; longer ones are hashed.
const maxFingerprint = 64

// Config configures a Watchdog. Zero values take the defaults.
type Config struct {
	// Store keeps the sessions' counts; nil: this process's memory,
	// bounded by MaxSessions and IdleAfter.
	Store Store
	// MaxSessions is the most sessions the memory store tracks; the least
	// recently seen is forgotten first. Default 10,000.
	MaxSessions int
	// IdleAfter is how long a session may be silent before it is
	// forgotten (at least the policy's window). Default 1h.
	IdleAfter time.Duration
	// MaxFingerprints is the most distinct requests tracked per session;
	// the least recently seen is forgotten first. Default 32.
	MaxFingerprints int
}

// Defaults of Config.
const (
	DefaultMaxSessions     = 10_000
	DefaultIdleAfter       = time.Hour
	DefaultMaxFingerprints = 32
)

// Store keeps the watchdog's counts of each session. Update hands fn the
// session's counts (a new Session when it has none) and keeps what fn
// leaves, for at least keep after now; it is atomic against the other
// Updates of the session: a store shared by several servers starts over
// when another changed the session meanwhile, so fn may run more than
// once, each time on the session as stored. Forget drops a session's
// counts: it starts over as if new.
type Store interface {
	Update(ctx context.Context, session string, now time.Time, keep time.Duration, fn func(*Session)) error
	Forget(ctx context.Context, session string) error
}

// Watchdog watches sessions. It is safe for concurrent use.
type Watchdog struct {
	cfg   Config
	store Store
	mem   *memoryStore // the store, when it is the memory's
}

// New returns a Watchdog.
func New(cfg Config) *Watchdog {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.IdleAfter <= 0 {
		cfg.IdleAfter = DefaultIdleAfter
	}
	if cfg.MaxFingerprints <= 0 {
		cfg.MaxFingerprints = DefaultMaxFingerprints
	}
	w := &Watchdog{cfg: cfg, store: cfg.Store}
	if w.store == nil {
		w.mem = NewMemoryStore(cfg.MaxSessions).(*memoryStore)
		w.store = w.mem
	}
	return w
}

// Len is the number of sessions the memory store tracks (0 with another
// store).
func (w *Watchdog) Len() int {
	if w.mem == nil {
		return 0
	}
	return w.mem.len()
}

// Reset forgets a session's counts and fired levels, for when a human
// resumes it: it starts over as if new.
func (w *Watchdog) Reset(ctx context.Context, session string) error {
	return w.store.Forget(ctx, session)
}

// Observe counts the event against the session's signals and returns the
// levels it crossed: at most one trip per signal, the higher level when
// one event crosses both. It returns nil when the policy has no watchdog,
// and an error, with no trip, when the store failed.
func (w *Watchdog) Observe(ctx context.Context, pol *policy.Policy, e Event) ([]Trip, error) {
	if pol == nil || pol.Watchdog == nil || e.Session == "" {
		return nil, nil
	}
	wd := pol.Watchdog
	var trips []Trip
	err := w.store.Update(ctx, e.Session, e.Time, max(w.cfg.IdleAfter, wd.Window), func(s *Session) {
		trips = w.observe(s, wd, e)
	})
	if err != nil {
		return nil, fmt.Errorf("watchdog: session %s: %w", e.Session, err)
	}
	return trips, nil
}

// observe counts e in s.
func (w *Watchdog) observe(s *Session, wd *policy.Watchdog, e Event) []Trip {
	if e.Time.After(s.seen) {
		s.seen = e.Time
	}
	s.id, s.project, s.agent = e.Session, e.Project, e.Agent
	c := check{s: s, wd: wd, e: e}
	switch e.Kind {
	case Request:
		if !wd.MaxRequestsPerMinute.IsZero() {
			c.level(RequestsPerMinute, wd.MaxRequestsPerMinute, s.requests.add(e.Time, 1))
		}
		if !wd.RepeatedCalls.IsZero() && e.Fingerprint != "" {
			c.level(RepeatedCalls, wd.RepeatedCalls, s.repeat(e, w.cfg.MaxFingerprints, wd))
		}
		if e.Denied {
			s.denials++
		} else {
			s.denials = 0
		}
		c.level(ConsecutiveDenials, wd.MaxConsecutiveDenials, s.denials)
	case UpstreamResult:
		if e.Status == 0 || e.Status == 429 || e.Status >= 500 {
			s.errors++
			if len(s.statuses) < maxStatuses && !slices.Contains(s.statuses, e.Status) {
				s.statuses = append(s.statuses, e.Status)
			}
		} else {
			s.errors, s.statuses = 0, s.statuses[:0]
		}
		c.level(UpstreamErrors, wd.UpstreamErrors, s.errors)
	case Tokens:
		if e.Tokens > 0 && !wd.TokensPerMinute.IsZero() {
			c.level(TokensPerMinute, wd.TokensPerMinute, s.tokens.add(e.Time, e.Tokens))
		}
	}
	if wd.MaxSessionDuration > 0 && !e.Started.IsZero() {
		c.duration(e.Time.Sub(e.Started))
	}
	return c.trips
}

// maxStatuses bounds the distinct statuses a streak remembers for its
// message.
const maxStatuses = 4

// Session is what the watchdog knows of one session: its counts, kept by
// a Store (MarshalJSON and UnmarshalJSON for a store that persists them).
type Session struct {
	id, project, agent string
	seen               time.Time // the latest event

	requests, tokens minuteCounter
	calls            map[string]*calls // by fingerprint
	denials, errors  int64
	statuses         []int // the distinct statuses of the error streak
	fired            [numSignals][2]levelState
}

// calls are the times one request was made, oldest first, within the
// window and at most the highest level.
type calls struct {
	times []time.Time
	last  time.Time
}

// repeat records a request and returns how often it was made within the
// window.
func (s *Session) repeat(e Event, maxFingerprints int, wd *policy.Watchdog) int64 {
	fp := e.Fingerprint
	if len(fp) > maxFingerprint {
		sum := sha256.Sum256([]byte(fp))
		fp = hex.EncodeToString(sum[:16])
	}
	if s.calls == nil {
		s.calls = map[string]*calls{}
	}
	c, ok := s.calls[fp]
	if !ok {
		if len(s.calls) >= maxFingerprints {
			s.forgetOldestCall()
		}
		c = &calls{}
		s.calls[fp] = c
	}
	if e.Time.After(c.last) {
		c.last = e.Time
	}
	limit := int(max(wd.RepeatedCalls.Alert, wd.RepeatedCalls.Pause, 1))
	i := slices.IndexFunc(c.times, func(t time.Time) bool { return e.Time.Sub(t) < wd.Window })
	if i < 0 {
		i = len(c.times)
	}
	c.times = append(c.times[:0], c.times[i:]...)
	if len(c.times) >= limit {
		c.times = append(c.times[:0], c.times[len(c.times)-limit+1:]...)
	}
	c.times = append(c.times, e.Time)
	return int64(len(c.times))
}

func (s *Session) forgetOldestCall() {
	var oldest string
	var at time.Time
	for fp, c := range s.calls {
		if oldest == "" || c.last.Before(at) {
			oldest, at = fp, c.last
		}
	}
	delete(s.calls, oldest)
}

// minuteCounter sums what was added in the last minute, in one-second
// buckets.
type minuteCounter struct {
	sums [60]int64
	secs [60]int64 // the Unix second each bucket holds
}

// add counts n at t and returns the sum of the minute ending at t.
func (m *minuteCounter) add(t time.Time, n int64) int64 {
	sec := t.Unix()
	i := int(((sec % 60) + 60) % 60)
	switch {
	case m.secs[i] == sec:
		m.sums[i] += n
	case m.secs[i] < sec:
		m.secs[i], m.sums[i] = sec, n
	} // else: older than the minute the bucket now holds; not counted
	var sum int64
	for j := range m.sums {
		if m.secs[j] > sec-60 && m.secs[j] <= sec {
			sum += m.sums[j]
		}
	}
	return sum
}

// levelState is one level of one signal: whether it fired, when, and
// whether the signal fell below it since.
type levelState struct {
	fired, cleared bool
	at             time.Time
}

// check evaluates one event's signals.
type check struct {
	s     *Session
	wd    *policy.Watchdog
	e     Event
	trips []Trip
}

// level reports the highest level of sig that value crosses and has not
// reported since it last re-armed.
func (c *check) level(sig Signal, l policy.Levels, value int64) {
	st := &c.s.fired[sig]
	pause := rearm(&st[1], l.Pause, value, c.e.Time, c.wd.Window)
	alert := rearm(&st[0], l.Alert, value, c.e.Time, c.wd.Window)
	switch {
	case pause:
		st[1] = levelState{fired: true, at: c.e.Time}
		if alert {
			st[0] = levelState{fired: true, at: c.e.Time}
		}
		c.trip(sig, c.pauseLevel(), value, l.Pause, 0)
	case alert:
		st[0] = levelState{fired: true, at: c.e.Time}
		c.trip(sig, LevelAlert, value, l.Alert, l.Pause)
	}
}

// rearm updates a level's state with the signal's value and reports
// whether the level is crossed and free to fire.
func rearm(st *levelState, threshold, value int64, now time.Time, window time.Duration) bool {
	if threshold <= 0 {
		return false
	}
	if st.fired {
		if value < threshold {
			st.cleared = true
		}
		if !st.cleared || now.Sub(st.at) < window {
			return false
		}
		*st = levelState{}
	}
	return value >= threshold
}

// duration checks max_session_duration, which only pauses.
func (c *check) duration(d time.Duration) {
	st := &c.s.fired[SessionDuration][1]
	if d <= c.wd.MaxSessionDuration || st.fired {
		return
	}
	*st = levelState{fired: true, at: c.e.Time}
	c.trip(SessionDuration, c.pauseLevel(), int64(d/time.Second), int64(c.wd.MaxSessionDuration/time.Second), 0)
}

func (c *check) pauseLevel() Level {
	if c.wd.OnTrip == "kill" {
		return LevelKill
	}
	return LevelPause
}

func (c *check) trip(sig Signal, lv Level, count, threshold, next int64) {
	t := Trip{
		Level: lv, Signal: sig, Count: count, Threshold: threshold, Next: next,
		Session: c.s.id, Project: c.s.project, Agent: c.s.agent, At: c.e.Time, Notify: c.wd.Notify,
	}
	t.Message = message(t, c.wd, c.s.statuses)
	c.trips = append(c.trips, t)
}
