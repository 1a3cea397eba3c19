package identity

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
)

// MemoryStore is an in-memory Store, for tests.
type MemoryStore struct {
	mu       sync.Mutex
	projects map[string]Project
	agents   map[string]Agent
	sessions map[string]Session
	meta     map[string][]byte
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{projects: map[string]Project{}, agents: map[string]Agent{}, sessions: map[string]Session{}, meta: map[string][]byte{}}
}

func agentKey(project, name string) string { return project + "/" + name }

// CreateProject implements Store.
func (m *MemoryStore) CreateProject(_ context.Context, p Project) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.projects[p.Name]; ok {
		return ErrExists
	}
	m.projects[p.Name] = p
	return nil
}

// GetProject implements Store.
func (m *MemoryStore) GetProject(_ context.Context, name string) (Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.projects[name]
	if !ok {
		return Project{}, ErrNotFound
	}
	return p, nil
}

// ListProjects implements Store.
func (m *MemoryStore) ListProjects(context.Context) ([]Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Collect(maps.Values(m.projects))
	slices.SortFunc(out, func(a, b Project) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// UpdateProject implements Store.
func (m *MemoryStore) UpdateProject(_ context.Context, name string, update func(*Project) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.projects[name]
	if !ok {
		return ErrNotFound
	}
	if err := update(&p); err != nil {
		return err
	}
	m.projects[name] = p
	return nil
}

// PutAgent implements Store.
func (m *MemoryStore) PutAgent(_ context.Context, a Agent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.agents[agentKey(a.Project, a.Name)]; !ok {
		m.agents[agentKey(a.Project, a.Name)] = a
	}
	return nil
}

// GetAgent implements Store.
func (m *MemoryStore) GetAgent(_ context.Context, project, name string) (Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.agents[agentKey(project, name)]
	if !ok {
		return Agent{}, ErrNotFound
	}
	return a, nil
}

// UpdateAgent implements Store.
func (m *MemoryStore) UpdateAgent(_ context.Context, project, name string, update func(*Agent) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.agents[agentKey(project, name)]
	if !ok {
		return ErrNotFound
	}
	if err := update(&a); err != nil {
		return err
	}
	m.agents[agentKey(project, name)] = a
	return nil
}

// CreateSession implements Store.
func (m *MemoryStore) CreateSession(_ context.Context, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.ID]; ok {
		return ErrExists
	}
	m.sessions[s.ID] = s
	return nil
}

// GetSession implements Store.
func (m *MemoryStore) GetSession(_ context.Context, id string) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	return s, nil
}

// ListSessions implements Store.
func (m *MemoryStore) ListSessions(_ context.Context, project string) ([]Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Session
	for _, s := range m.sessions {
		if project == "" || s.Project == project {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// UpdateSession implements Store.
func (m *MemoryStore) UpdateSession(_ context.Context, id string, update func(*Session) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return ErrNotFound
	}
	if err := update(&s); err != nil {
		return err
	}
	m.sessions[id] = s
	return nil
}

// GetMeta implements Store.
func (m *MemoryStore) GetMeta(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.meta[key]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(v), nil
}

// PutMeta implements Store.
func (m *MemoryStore) PutMeta(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.meta[key] = slices.Clone(value)
	return nil
}
