package budget

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// MemoryLedger is an in-memory Ledger, for tests. It is safe for
// concurrent use; its zero value is ready.
type MemoryLedger struct {
	mu       sync.Mutex
	counters map[CounterKey]Counter
	holds    map[string]Reservation
}

var _ Ledger = (*MemoryLedger)(nil)

// NewMemoryLedger returns an empty ledger.
func NewMemoryLedger() *MemoryLedger { return &MemoryLedger{} }

// Reserve implements Ledger.
func (m *MemoryLedger) Reserve(_ context.Context, r Reservation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holds == nil {
		m.counters, m.holds = map[CounterKey]Counter{}, map[string]Reservation{}
	}
	if _, ok := m.holds[r.ID]; ok {
		return fmt.Errorf("reservation %s exists already", r.ID)
	}
	for i, ch := range r.Charges {
		if c := m.counters[normal(ch.Key)]; !ch.Admits(c, r.Worst) {
			return &CapError{Charge: i, Counter: cloneCounter(c)}
		}
	}
	for _, ch := range r.Charges {
		k := normal(ch.Key)
		c := m.counters[k]
		c.Held = c.Held.Add(r.Worst)
		m.counters[k] = c
	}
	r.Charges = slices.Clone(r.Charges)
	m.holds[r.ID] = r
	return nil
}

// Settle implements Ledger.
func (m *MemoryLedger) Settle(_ context.Context, id string, actual Amount) ([]Settled, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.holds[id]
	if !ok {
		return nil, ErrUnknownHold
	}
	delete(m.holds, id)
	out := make([]Settled, len(r.Charges))
	for i, ch := range r.Charges {
		k := normal(ch.Key)
		s := ch.Settle(m.counters[k], r.Worst, actual)
		m.counters[k] = s.Counter
		s.Counter = cloneCounter(s.Counter)
		out[i] = s
	}
	return out, nil
}

// Counters implements Ledger.
func (m *MemoryLedger) Counters(_ context.Context, keys []CounterKey) ([]Counter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Counter, len(keys))
	for i, k := range keys {
		out[i] = cloneCounter(m.counters[normal(k)])
	}
	return out, nil
}

// normal makes equal windows equal keys, whatever their location.
func normal(k CounterKey) CounterKey {
	k.Window = k.Window.UTC()
	return k
}

func cloneCounter(c Counter) Counter {
	c.Alerted = slices.Clone(c.Alerted)
	return c
}
