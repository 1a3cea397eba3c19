package watchdog

import (
	"cmp"
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// NewMemoryStore returns the Store of one process, a Watchdog's by
// default: the sessions in a map, at most maxSessions of them (the least
// recently seen are forgotten first), the idle ones forgotten too.
func NewMemoryStore(maxSessions int) Store {
	return &memoryStore{max: cmp.Or(maxSessions, DefaultMaxSessions), sessions: map[string]*list.Element{}}
}

// memoryStore is the Store of one process: the sessions in a map, the
// least recently seen forgotten first past max, and the idle ones.
type memoryStore struct {
	max int

	mu       sync.Mutex
	sessions map[string]*list.Element // of *Session
	lru      list.List                // front: most recently seen
}

func (m *memoryStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Update implements Store.
func (m *memoryStore) Update(_ context.Context, id string, now time.Time, keep time.Duration, fn func(*Session)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.sessions[id]
	if ok {
		m.lru.MoveToFront(el)
	} else {
		el = m.lru.PushFront(&Session{id: id})
		m.sessions[id] = el
	}
	fn(el.Value.(*Session))
	for back := m.lru.Back(); back != nil && back != el; back = m.lru.Back() {
		old := back.Value.(*Session)
		if len(m.sessions) <= m.max && now.Sub(old.seen) < keep {
			break
		}
		m.lru.Remove(back)
		delete(m.sessions, old.id)
	}
	return nil
}

// Forget implements Store.
func (m *memoryStore) Forget(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.sessions[id]; ok {
		m.lru.Remove(el)
		delete(m.sessions, id)
	}
	return nil
}

// MaxSessionJSON bounds a session's encoded counts: 32 requests of 20
// times each and the two minutes' counters are under 16 KiB.
const MaxSessionJSON = 64 << 10

// sessionJSON is a Session as stored: times in Unix nanoseconds (0 for
// none), counters by their non-empty seconds, levels only once fired. Not
// when it was last seen, which only the memory store's eviction reads (a
// persistent store expires the counts itself): so the encoding changes
// only when a count does, and a store can skip writing it back.
type sessionJSON struct {
	ID       string               `json:"id"`
	Project  string               `json:"project,omitempty"`
	Agent    string               `json:"agent,omitempty"`
	Requests [][2]int64           `json:"requests,omitempty"`
	Tokens   [][2]int64           `json:"tokens,omitempty"`
	Calls    map[string]callsJSON `json:"calls,omitempty"`
	Denials  int64                `json:"denials,omitempty"`
	Errors   int64                `json:"errors,omitempty"`
	Statuses []int                `json:"statuses,omitempty"`
	Fired    []firedJSON          `json:"fired,omitempty"`
}

type callsJSON struct {
	Times []int64 `json:"times"`
	Last  int64   `json:"last"`
}

type firedJSON struct {
	Signal  Signal `json:"signal"`
	Level   int    `json:"level"` // 0 alert, 1 pause
	Cleared bool   `json:"cleared,omitempty"`
	At      int64  `json:"at"`
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// MarshalJSON encodes the session's counts.
func (s *Session) MarshalJSON() ([]byte, error) {
	out := sessionJSON{ID: s.id, Project: s.project, Agent: s.agent,
		Requests: s.requests.buckets(), Tokens: s.tokens.buckets(),
		Denials: s.denials, Errors: s.errors, Statuses: s.statuses}
	if len(s.calls) > 0 {
		out.Calls = make(map[string]callsJSON, len(s.calls))
		for fp, c := range s.calls {
			cj := callsJSON{Last: ns(c.last)}
			for _, t := range c.times {
				cj.Times = append(cj.Times, ns(t))
			}
			out.Calls[fp] = cj
		}
	}
	for sig := range numSignals {
		for lv, st := range s.fired[sig] {
			if st.fired {
				out.Fired = append(out.Fired, firedJSON{Signal: Signal(sig), Level: lv, Cleared: st.cleared, At: ns(st.at)})
			}
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes counts MarshalJSON encoded.
func (s *Session) UnmarshalJSON(data []byte) error {
	if len(data) > MaxSessionJSON {
		return fmt.Errorf("watchdog session: %d bytes, more than %d", len(data), MaxSessionJSON)
	}
	var in sessionJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return fmt.Errorf("watchdog session: %w", err)
	}
	*s = Session{id: in.ID, project: in.Project, agent: in.Agent,
		denials: in.Denials, errors: in.Errors, statuses: in.Statuses}
	if err := s.requests.load(in.Requests); err != nil {
		return err
	}
	if err := s.tokens.load(in.Tokens); err != nil {
		return err
	}
	if len(in.Calls) > 0 {
		s.calls = make(map[string]*calls, len(in.Calls))
		for fp, cj := range in.Calls {
			c := &calls{last: fromNS(cj.Last)}
			for _, n := range cj.Times {
				c.times = append(c.times, fromNS(n))
			}
			s.calls[fp] = c
		}
	}
	for _, f := range in.Fired {
		if f.Signal < 0 || f.Signal >= numSignals || f.Level < 0 || f.Level > 1 {
			return fmt.Errorf("watchdog session: no signal %d level %d", f.Signal, f.Level)
		}
		s.fired[f.Signal][f.Level] = levelState{fired: true, cleared: f.Cleared, at: fromNS(f.At)}
	}
	return nil
}

// buckets are the counter's non-empty seconds: (Unix second, sum).
func (m *minuteCounter) buckets() [][2]int64 {
	var out [][2]int64
	for j := range m.secs {
		if m.secs[j] != 0 {
			out = append(out, [2]int64{m.secs[j], m.sums[j]})
		}
	}
	return out
}

func (m *minuteCounter) load(bs [][2]int64) error {
	for _, b := range bs {
		if b[0] <= 0 {
			return fmt.Errorf("watchdog session: counter second %d", b[0])
		}
		i := int(b[0] % 60)
		m.secs[i], m.sums[i] = b[0], b[1]
	}
	return nil
}
