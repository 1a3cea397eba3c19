package budget

import (
	"cmp"
	"context"
	"sync"
	"time"
)

// MemoryRates is the RateStore of one process, a Limiter's by default: a
// map, bounded by MaxKeys (DefaultMaxKeys when 0). It is safe for
// concurrent use.
type MemoryRates struct {
	MaxKeys int

	mu      sync.Mutex
	keys    map[RateKey]Bucket
	sweepAt int // sweep idle counters when this many are kept
}

func (m *MemoryRates) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// Update implements RateStore.
func (m *MemoryRates) Update(_ context.Context, keys []RateKey, now time.Time, strict bool, fn func([]Bucket) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.makeRoom(keys, now, strict); err != nil {
		return err
	}
	bs := make([]Bucket, len(keys))
	for i, k := range keys {
		bs[i] = m.keys[k]
	}
	if err := fn(bs); err != nil {
		return err
	}
	for i, k := range keys {
		m.keys[k] = bs[i]
	}
	return nil
}

// makeRoom forgets idle counters when there are many, before any of the
// call's counters is looked up, so that none it uses is dropped midway.
// With strict, it refuses the call if its new counters would take the
// store past maxKeys. It holds m.mu.
func (m *MemoryRates) makeRoom(keys []RateKey, now time.Time, strict bool) error {
	if m.keys == nil {
		m.keys = map[RateKey]Bucket{}
	}
	added := m.missing(keys)
	if added == 0 || len(m.keys)+added < max(m.sweepAt, 1024) && len(m.keys)+added <= cmp.Or(m.MaxKeys, DefaultMaxKeys) {
		return nil
	}
	for k, b := range m.keys {
		if !b.Full.After(now) {
			delete(m.keys, k)
		}
	}
	m.sweepAt = 2 * len(m.keys)
	if strict && len(m.keys)+m.missing(keys) > cmp.Or(m.MaxKeys, DefaultMaxKeys) {
		return ErrLimiterFull
	}
	return nil
}

// missing counts the keys not kept.
func (m *MemoryRates) missing(keys []RateKey) int {
	n := 0
	for _, k := range keys {
		if _, ok := m.keys[k]; !ok {
			n++
		}
	}
	return n
}
