package approval

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store in memory, for tests and tools. It is safe for
// concurrent use.
type MemoryStore struct {
	mu     sync.Mutex
	byID   map[string]Approval
	latest map[string]string // key -> ID
}

var _ Store = (*MemoryStore)(nil)

func (m *MemoryStore) init() {
	if m.byID == nil {
		m.byID, m.latest = map[string]Approval{}, map[string]string{}
	}
}

// Latest implements Store.
func (m *MemoryStore) Latest(_ context.Context, key string, fn func(*Approval) (*Approval, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	var cur *Approval
	if id, ok := m.latest[key]; ok {
		a := clone(m.byID[id])
		cur = &a
	}
	n, err := fn(cur)
	if err != nil {
		return err
	}
	if cur != nil {
		m.byID[cur.ID] = clone(*cur)
	}
	if n != nil {
		m.byID[n.ID] = clone(*n)
		m.latest[key] = n.ID
	}
	return nil
}

// Update implements Store.
func (m *MemoryStore) Update(_ context.Context, id string, fn func(*Approval) error) (Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	cur, ok := m.byID[id]
	if !ok {
		return Approval{}, ErrNotFound
	}
	a := clone(cur)
	if err := fn(&a); err != nil {
		return Approval{}, err
	}
	m.byID[id] = clone(a)
	return a, nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, id string) (Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.byID[id]
	if !ok {
		return Approval{}, ErrNotFound
	}
	return clone(a), nil
}

// List implements Store.
func (m *MemoryStore) List(_ context.Context, f Filter) ([]Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Approval
	for _, a := range m.byID {
		if f.State == "" || a.State == f.State {
			out = append(out, clone(a))
		}
	}
	slices.SortFunc(out, func(a, b Approval) int { return b.Created.Compare(a.Created) })
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	return out[:min(len(out), limit)], nil
}

// Due implements Store.
func (m *MemoryStore) Due(_ context.Context, t time.Time) ([]Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Approval
	for _, a := range m.byID {
		if a.State == Pending && !a.Expires.After(t) {
			out = append(out, clone(a))
		}
	}
	return out, nil
}

func clone(a Approval) Approval {
	a.Args = slices.Clone(a.Args)
	a.Groups, a.Approvers, a.Channels = slices.Clone(a.Groups), slices.Clone(a.Approvers), slices.Clone(a.Channels)
	return a
}
