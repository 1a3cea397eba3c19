package pipeline

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/watchdog"
)

// Sessions is what the watchdog does to a session that trips it.
type Sessions interface {
	PauseSession(ctx context.Context, id, by, reason string) error
	KillSession(ctx context.Context, id, by, reason string) error
}

// Watchdog is the loop watchdog of a server: it sees every decided
// request and every model call's result and usage, and when a session
// crosses the policy's levels it records the trip, pauses or kills the
// session (from its next request on; the request that tripped it is
// refused), and tells the policy's channels.
type Watchdog struct {
	Dog      *watchdog.Watchdog
	Policy   PolicySource
	Sessions Sessions
	Audit    audit.Sink
	// Notify, if not nil, is handed each trip's channels and message.
	Notify func(to []string, m notify.Message)
	Log    *slog.Logger
	Now    func() time.Time
}

func (w *Watchdog) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// request observes a decided request; a pause or kill it causes refuses it.
func (w *Watchdog) request(ctx context.Context, sess identity.Session, req *policy.Request, args []byte, denied bool) *Refusal {
	return w.observe(ctx, sess, watchdog.Event{Kind: watchdog.Request, Denied: denied,
		Fingerprint: watchdog.Fingerprint(req.Action, req.Resource, args)})
}

// Upstream observes a model call's answer: its HTTP status, 0 for none.
func (w *Watchdog) Upstream(ctx context.Context, sess identity.Session, status int) {
	w.observe(ctx, sess, watchdog.Event{Kind: watchdog.UpstreamResult, Status: status})
}

// Tokens observes the tokens a model call used.
func (w *Watchdog) Tokens(ctx context.Context, sess identity.Session, n int64) {
	w.observe(ctx, sess, watchdog.Event{Kind: watchdog.Tokens, Tokens: n})
}

func (w *Watchdog) observe(ctx context.Context, sess identity.Session, e watchdog.Event) *Refusal {
	if w == nil {
		return nil
	}
	e.Session, e.Project, e.Agent, e.Time, e.Started = sess.ID, sess.Project, sess.Agent, w.now(), sess.CreatedAt
	trips, err := w.Dog.Observe(ctx, w.Policy.Current(), e)
	if err != nil {
		w.log().Error("watchdog", "err", err, "session", sess.ID)
		// A request the watchdog cannot count is not acted on: the
		// session may be in a loop that nothing would catch.
		return &Refusal{Status: http.StatusServiceUnavailable, Message: "the watchdog cannot count this session's requests, so the request is refused"}
	}
	var ref *Refusal
	for _, t := range trips {
		if _, err := w.Audit.Append(ctx, t.Record()); err != nil {
			w.log().Error("record a watchdog trip", "err", err, "session", sess.ID)
		}
		var err error
		switch t.Level {
		case watchdog.LevelPause:
			err = w.Sessions.PauseSession(ctx, sess.ID, "watchdog", t.Message)
		case watchdog.LevelKill:
			err = w.Sessions.KillSession(ctx, sess.ID, "watchdog", t.Message)
		}
		if err != nil {
			w.log().Error("watchdog could not stop a session", "err", err, "session", sess.ID, "level", t.Level)
		}
		if t.Level != watchdog.LevelAlert {
			ref = &Refusal{Status: http.StatusForbidden, Message: t.Message}
		}
		if w.Notify != nil {
			w.Notify(t.Notify, t.Notification())
		}
	}
	return ref
}

func (w *Watchdog) log() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.Default()
}
