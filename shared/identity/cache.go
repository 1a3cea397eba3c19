package identity

import (
	"context"
	"sync"
)

// maxCached bounds each cache; past it the cache starts over.
const maxCached = 100_000

// CachedStore serves reads of projects, agents and sessions from memory for
// a Store that no other process writes — the local server's own SQLite
// file. Authentication reads all three on every request; writes go to the
// store first and then drop the cached copy, so a kill or a freeze made
// through this process is seen by the very next request.
type CachedStore struct {
	Store
	mu       sync.Mutex
	gen      uint64 // bumped by every write, so that a read that raced one is not cached
	projects map[string]Project
	agents   map[string]Agent
	sessions map[string]Session
}

var _ Store = (*CachedStore)(nil)

// NewCachedStore wraps s, which only this process may write.
func NewCachedStore(s Store) *CachedStore {
	return &CachedStore{Store: s, projects: map[string]Project{}, agents: map[string]Agent{}, sessions: map[string]Session{}}
}

// cached reads key from m, or from the store on a miss, caching what it read
// unless a write happened meanwhile.
func cached[V any](c *CachedStore, m map[string]V, key string, load func() (V, error)) (V, error) {
	c.mu.Lock()
	if v, ok := m[key]; ok {
		c.mu.Unlock()
		return v, nil
	}
	gen := c.gen
	c.mu.Unlock()
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(m) >= maxCached {
			clear(m)
		}
		m[key] = v
	}
	c.mu.Unlock()
	return v, nil
}

// wrote records a write: the key's cached copy goes, and reads in flight
// will not cache what they read.
func wrote[V any](c *CachedStore, m map[string]V, key string) {
	c.mu.Lock()
	c.gen++
	delete(m, key)
	c.mu.Unlock()
}

// GetProject implements Store.
func (c *CachedStore) GetProject(ctx context.Context, name string) (Project, error) {
	return cached(c, c.projects, name, func() (Project, error) { return c.Store.GetProject(ctx, name) })
}

// GetAgent implements Store.
func (c *CachedStore) GetAgent(ctx context.Context, project, name string) (Agent, error) {
	return cached(c, c.agents, agentKey(project, name), func() (Agent, error) { return c.Store.GetAgent(ctx, project, name) })
}

// GetSession implements Store.
func (c *CachedStore) GetSession(ctx context.Context, id string) (Session, error) {
	return cached(c, c.sessions, id, func() (Session, error) { return c.Store.GetSession(ctx, id) })
}

// CreateProject implements Store.
func (c *CachedStore) CreateProject(ctx context.Context, p Project) error {
	defer wrote(c, c.projects, p.Name)
	return c.Store.CreateProject(ctx, p)
}

// UpdateProject implements Store.
func (c *CachedStore) UpdateProject(ctx context.Context, name string, update func(*Project) error) error {
	defer wrote(c, c.projects, name)
	return c.Store.UpdateProject(ctx, name, update)
}

// PutAgent implements Store.
func (c *CachedStore) PutAgent(ctx context.Context, a Agent) error {
	defer wrote(c, c.agents, agentKey(a.Project, a.Name))
	return c.Store.PutAgent(ctx, a)
}

// UpdateAgent implements Store.
func (c *CachedStore) UpdateAgent(ctx context.Context, project, name string, update func(*Agent) error) error {
	defer wrote(c, c.agents, agentKey(project, name))
	return c.Store.UpdateAgent(ctx, project, name, update)
}

// CreateSession implements Store.
func (c *CachedStore) CreateSession(ctx context.Context, s Session) error {
	defer wrote(c, c.sessions, s.ID)
	return c.Store.CreateSession(ctx, s)
}

// UpdateSession implements Store.
func (c *CachedStore) UpdateSession(ctx context.Context, id string, update func(*Session) error) error {
	defer wrote(c, c.sessions, id)
	return c.Store.UpdateSession(ctx, id, update)
}
