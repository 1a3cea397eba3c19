package identity

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// gatedStore pauses the first GetSession after it has read the store, so a
// test can slip a write in between the read and its caching.
type gatedStore struct {
	*MemoryStore
	once    sync.Once
	read    chan struct{}
	release chan struct{}
}

func (g *gatedStore) GetSession(ctx context.Context, id string) (Session, error) {
	s, err := g.MemoryStore.GetSession(ctx, id)
	g.once.Do(func() {
		close(g.read)
		<-g.release
	})
	return s, err
}

// TestCachedStoreDoesNotCacheARacedRead: a read that fetched a session just
// before a kill must not put the unkilled copy in the cache.
func TestCachedStoreDoesNotCacheARacedRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner := &gatedStore{MemoryStore: NewMemoryStore(), read: make(chan struct{}), release: make(chan struct{})}
	s := NewService(NewCachedStore(inner), nil)
	key, _ := s.CreateProject(ctx, "p")
	sess, token, err := s.Login(ctx, key, "a", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := s.Authenticate(ctx, token) // reads the live session, then waits
		done <- err
	}()
	<-inner.read
	if err := s.KillSession(ctx, sess.ID, "admin", "race"); err != nil {
		t.Fatal(err)
	}
	close(inner.release)
	if err := <-done; err != nil {
		t.Fatalf("the raced read itself: %v", err)
	}
	if _, err := s.Authenticate(ctx, token); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the race a killed session authenticated: %v", err)
	}
}

// TestCachedStoreServesReads checks that repeated reads hit the cache and
// writes through the cache are seen at once.
func TestCachedStoreServesReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := NewCachedStore(NewMemoryStore())
	s := NewService(c, nil)
	key, _ := s.CreateProject(ctx, "p")
	_, token, _ := s.Login(ctx, key, "a", nil, 0)
	for i := 0; i < 3; i++ {
		if _, err := s.Authenticate(ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.sessions) != 1 || len(c.agents) != 1 || len(c.projects) != 1 {
		t.Errorf("cached %d sessions, %d agents, %d projects; want 1 each", len(c.sessions), len(c.agents), len(c.projects))
	}
	if err := s.FreezeProject(ctx, "p", "admin", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, token); !errors.Is(err, ErrRevoked) {
		t.Errorf("freeze not seen: %v", err)
	}
}
