package audit

import (
	"context"
	"fmt"
	"sync"
)

// MemorySink keeps records in memory, for tests. Fail makes it refuse
// records, to test that callers fail closed.
type MemorySink struct {
	mu      sync.Mutex
	records []Record
	digests []Digest
	Fail    error
}

var (
	_ Sink   = (*MemorySink)(nil)
	_ Reader = (*MemorySink)(nil)
)

// Append implements Sink.
func (m *MemorySink) Append(_ context.Context, r Record) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return Record{}, m.Fail
	}
	r.Seq = int64(len(m.records)) + 1
	prev, sessionPrev := "", ""
	if n := len(m.records); n > 0 {
		prev = m.records[n-1].Hash
	}
	for i := len(m.records) - 1; i >= 0 && r.Session != ""; i-- {
		if m.records[i].Session == r.Session {
			sessionPrev = m.records[i].Hash
			break
		}
	}
	if _, err := Link(&r, prev, sessionPrev); err != nil {
		return Record{}, err
	}
	m.records = append(m.records, r)
	return r, nil
}

// After implements Reader.
func (m *MemorySink) After(_ context.Context, after int64, limit int) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.records {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

// Records returns a copy of everything recorded.
func (m *MemorySink) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.records...)
}

// Latest implements Reader.
func (m *MemorySink) Latest(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.records)), nil
}

var _ DigestStore = (*MemorySink)(nil)

// AppendDigest implements DigestStore.
func (m *MemorySink) AppendDigest(_ context.Context, d Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d.Seq != int64(len(m.digests))+1 {
		return fmt.Errorf("digest %d does not follow %d", d.Seq, len(m.digests))
	}
	m.digests = append(m.digests, d)
	return nil
}

// LastDigest implements DigestStore.
func (m *MemorySink) LastDigest(context.Context) (Digest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.digests) == 0 {
		return Digest{}, ErrNoDigest
	}
	return m.digests[len(m.digests)-1], nil
}

// Digests implements DigestStore.
func (m *MemorySink) Digests(context.Context) ([]Digest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Digest(nil), m.digests...), nil
}

var _ Querier = (*MemorySink)(nil)

// Query implements Querier.
func (m *MemorySink) Query(_ context.Context, f Filter, after int64, limit int) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for i := range m.records {
		r := &m.records[i]
		if r.Seq > after && f.Match(r) && len(out) < limit {
			out = append(out, *r)
		}
	}
	return out, nil
}
