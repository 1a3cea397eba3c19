package watchdog

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/textfmt"
)

// Level is what a trip calls for.
type Level string

// Levels of a trip.
const (
	// LevelAlert: record and notify; the session goes on.
	LevelAlert Level = "alert"
	// LevelPause: pause the session until a human resumes it.
	LevelPause Level = "pause"
	// LevelKill: kill the session (the policy's on_trip: kill).
	LevelKill Level = "kill"
)

// Signal is what the watchdog counts. Each is named after its key under
// the policy's watchdog:.
type Signal int

// Signals.
const (
	RepeatedCalls Signal = iota
	UpstreamErrors
	TokensPerMinute
	RequestsPerMinute
	ConsecutiveDenials
	SessionDuration
	numSignals
)

var signalNames = [numSignals]string{
	"repeated_calls", "upstream_errors", "tokens_per_minute", "max_requests_per_minute",
	"max_consecutive_denials", "max_session_duration",
}

// String is the signal's key in the policy, e.g. "upstream_errors".
func (s Signal) String() string {
	if s >= 0 && s < numSignals {
		return signalNames[s]
	}
	return "signal(" + strconv.Itoa(int(s)) + ")"
}

// Trip is a level of a signal crossed by a session.
type Trip struct {
	Level  Level
	Signal Signal
	// Count is the signal's value that crossed the level: calls, errors,
	// denials, requests or tokens, or seconds for SessionDuration.
	Count int64
	// Threshold is the level crossed; Next, for an alert, the pause
	// level still ahead (0: none).
	Threshold, Next         int64
	Session, Project, Agent string
	// At is the time of the event that crossed the level.
	At time.Time
	// Notify are the channels the policy's watchdog notifies.
	Notify []string
	// Message says what happened, for the audit trail, the agent and
	// people: "watchdog: session d97e2169 got 10 upstream errors in a row
	// (429), alert level 10; it is paused at 20".
	Message string
}

// message writes a trip's Message.
func message(t Trip, wd *policy.Watchdog, statuses []int) string {
	var what string
	switch t.Signal {
	case RepeatedCalls:
		what = fmt.Sprintf("made the same request %d times in %s", t.Count, textfmt.Duration(wd.Window))
	case UpstreamErrors:
		what = fmt.Sprintf("got %d upstream errors in a row (%s)", t.Count, statusList(statuses))
	case TokensPerMinute:
		what = fmt.Sprintf("used %s tokens in the last minute", textfmt.Thousands(t.Count))
	case RequestsPerMinute:
		what = fmt.Sprintf("made %d requests in the last minute", t.Count)
	case ConsecutiveDenials:
		what = fmt.Sprintf("was denied %d times in a row", t.Count)
	case SessionDuration:
		return fmt.Sprintf("watchdog: session %s has run for %s, longer than max_session_duration %s; %s",
			t.Session, textfmt.Duration(time.Duration(t.Count)*time.Second), textfmt.Duration(wd.MaxSessionDuration), consequence(t.Level))
	}
	switch t.Level {
	case LevelAlert:
		msg := fmt.Sprintf("watchdog: session %s %s, alert level %s", t.Session, what, textfmt.Thousands(t.Threshold))
		if t.Next > 0 {
			verb := "paused"
			if wd.OnTrip == "kill" {
				verb = "killed"
			}
			msg += fmt.Sprintf("; it is %s at %s", verb, textfmt.Thousands(t.Next))
		}
		return msg
	case LevelKill:
		return fmt.Sprintf("watchdog: session %s %s, pause level %s with on_trip: kill; %s",
			t.Session, what, textfmt.Thousands(t.Threshold), consequence(t.Level))
	}
	return fmt.Sprintf("watchdog: session %s %s, pause level %s; %s", t.Session, what, textfmt.Thousands(t.Threshold), consequence(t.Level))
}

func consequence(l Level) string {
	if l == LevelKill {
		return "it is killed"
	}
	return "it is paused until a human resumes it"
}

// statusList names the statuses of an error streak: "429", "429, 503",
// "no answer".
func statusList(statuses []int) string {
	parts := make([]string, len(statuses))
	for i, s := range statuses {
		if s == 0 {
			parts[i] = "no answer"
		} else {
			parts[i] = strconv.Itoa(s)
		}
	}
	return strings.Join(parts, ", ")
}

// Record is the audit record of the trip: watchdog.alert, watchdog.paused,
// or session.killed with the watchdog as the actor. Reason is the
// message, Resource the signal.
func (t Trip) Record() audit.Record {
	code := audit.WatchdogAlert
	switch t.Level {
	case LevelPause:
		code = audit.WatchdogPaused
	case LevelKill:
		code = audit.SessionKilled
	}
	return audit.Record{
		ID: audit.NewID(), Time: t.At.UTC(), Code: code, Project: t.Project, Agent: t.Agent, Session: t.Session,
		Actor: "watchdog", Resource: t.Signal.String(), Reason: t.Message,
	}
}

// Notification is the trip as a message for the policy's channels: a
// warning for an alert, critical for a pause or a kill.
func (t Trip) Notification() notify.Message {
	m := notify.Message{
		Event: string(t.Record().Code), Text: t.Message, Time: t.At, Severity: notify.Critical,
		Fields: []notify.Field{
			{Name: "project", Value: t.Project}, {Name: "agent", Value: t.Agent}, {Name: "session", Value: t.Session},
			{Name: "signal", Value: t.Signal.String()}, {Name: "count", Value: textfmt.Thousands(t.Count)},
			{Name: string(t.Level) + " level", Value: textfmt.Thousands(t.Threshold)},
		},
	}
	switch t.Level {
	case LevelAlert:
		m.Title, m.Severity = "Watchdog alert: session "+t.Session, notify.Warning
	case LevelPause:
		m.Title = "Session " + t.Session + " paused by the watchdog"
	case LevelKill:
		m.Title = "Session " + t.Session + " killed by the watchdog"
	}
	if t.Signal == SessionDuration {
		m.Fields[4] = notify.Field{Name: "ran for", Value: textfmt.Duration(time.Duration(t.Count) * time.Second)}
		m.Fields[5] = notify.Field{Name: "max_session_duration", Value: textfmt.Duration(time.Duration(t.Threshold) * time.Second)}
	}
	return m
}
