// Package notifytest is a stand-in for Slack's Web API, for tests:
// slack-go's slacktest server, with chat.postMessage answering a new ts
// each time and chat.update (which slacktest does not serve) answered as
// Slack documents it, each request kept.
package notifytest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/wardenhq/warden/shared/notify"
)

// Slack is the stand-in.
type Slack struct {
	*slacktest.Server
	// RefuseUpdates has chat.update answer message_not_found.
	RefuseUpdates atomic.Bool

	mu    sync.Mutex
	calls []Call
	read  int // calls Next and Unread returned
}

// Call is a request the stand-in took: a post ("post"), with the ts it was
// answered, or an update ("update") of the message ts.
type Call struct {
	Method, Channel, TS, Text string
	// Token is the bot token, from the form or the Authorization header.
	Token  string
	Blocks string // JSON
	At     time.Time
}

// Buttons reports whether the message has Warden's buttons.
func (c Call) Buttons() bool { return strings.Contains(c.Blocks, notify.ActionsBlockID) }

// NewSlack starts the stand-in, stopped at the end of the test; its
// GetAPIURL is Slack's API URL for a notifier.
func NewSlack(t testing.TB) *Slack {
	s := &Slack{}
	handle := func(method string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c := Call{Method: method, Channel: r.FormValue("channel"), TS: r.FormValue("ts"), Text: r.FormValue("text"),
				Token: r.FormValue("token") + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), Blocks: r.FormValue("blocks"), At: time.Now()}
			w.Header().Set("Content-Type", "application/json")
			if method == "update" && s.RefuseUpdates.Load() {
				fmt.Fprint(w, `{"ok":false,"error":"message_not_found"}`)
				return
			}
			s.mu.Lock()
			if method == "post" {
				c.TS = fmt.Sprintf("1772366400.%06d", len(s.calls)+1)
			}
			s.calls = append(s.calls, c)
			s.mu.Unlock()
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, c.Channel, c.TS)
		}
	}
	s.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", handle("post"))
		c.Handle("/chat.update", handle("update"))
	})
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Calls returns every request taken so far.
func (s *Slack) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Unread returns the requests taken since the last Next or Unread.
func (s *Slack) Unread() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.calls[s.read:])
	s.read = len(s.calls)
	return out
}

// Next waits up to five seconds for the next unread request, which must
// be method ("post" or "update").
func (s *Slack) Next(t testing.TB, method string) Call {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		if s.read < len(s.calls) {
			c := s.calls[s.read]
			s.read++
			s.mu.Unlock()
			if c.Method != method {
				t.Fatalf("Slack got a %s (%s), want a %s", c.Method, c.Blocks, method)
			}
			return c
		}
		s.mu.Unlock()
	}
	t.Fatalf("Slack got no %s", method)
	return Call{}
}

// Updated waits for the next request, which must replace the message post
// with one that says outcome and has no buttons.
func (s *Slack) Updated(t testing.TB, post Call, outcome string) {
	t.Helper()
	up := s.Next(t, "update")
	if up.Channel != post.Channel || up.TS != post.TS || up.Buttons() || !strings.Contains(up.Blocks, outcome) {
		t.Errorf("update of %s/%s: %s, want the message %s/%s with %q and no buttons", up.Channel, up.TS, up.Blocks, post.Channel, post.TS, outcome)
	}
}
