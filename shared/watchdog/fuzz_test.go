package watchdog

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// FuzzObserve drives the watchdog with arbitrary event sequences, read
// four bytes an event (kind, session, status or token class, time step),
// and checks what must hold whatever the sessions do: no panic, memory
// within its bounds, every trip past its level and at most one per
// signal per event.
func FuzzObserve(f *testing.F) {
	f.Add([]byte{2, 0, 1, 10, 2, 0, 1, 10, 2, 0, 1, 10})
	f.Add([]byte{1, 1, 0, 0, 1, 1, 0, 0, 3, 1, 255, 1, 1, 2, 3, 200})
	pol := load(f, "{repeated_calls: {alert: 2, pause: 3}, upstream_errors: 3, tokens_per_minute: {alert: 1000, pause: 5000},"+
		" max_requests_per_minute: {pause: 6}, max_consecutive_denials: 2, max_session_duration: 1m, window: 10s}")
	f.Fuzz(func(t *testing.T, data []byte) {
		w := New(Config{MaxSessions: 4, MaxFingerprints: 3, IdleAfter: time.Second})
		at := t0
		for len(data) >= 4 {
			k, sess, x, step := data[0], data[1], data[2], data[3]
			data = data[4:]
			at = at.Add(time.Duration(int8(step)) * time.Second) // may go back in time
			e := Event{Kind: Kind(k%4 + 1), Session: fmt.Sprint("s", sess%6), Time: at, Started: t0,
				Fingerprint: fmt.Sprint(x % 5), Denied: x%2 == 0, Status: []int{0, 200, 429, 500, 404}[x%5], Tokens: int64(x) * 50}
			if k == 255 {
				w.Reset(context.Background(), e.Session)
				continue
			}
			trips := obs(w, pol, e)
			seen := map[Signal]bool{}
			for _, tr := range trips {
				if seen[tr.Signal] || tr.Count < tr.Threshold || tr.Threshold <= 0 || tr.Message == "" || tr.Session != e.Session {
					t.Fatalf("trip %+v for event %+v", tr, e)
				}
				seen[tr.Signal] = true
			}
			if w.Len() > 4 {
				t.Fatalf("%d sessions tracked", w.Len())
			}
		}
	})
}
