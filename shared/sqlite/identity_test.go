package sqlite

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/identity/identitytest"
)

// TestIdentityStore runs the same behaviour table against the reference
// in-memory store and the SQLite one.
func TestIdentityStore(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		identitytest.Run(t, func(testing.TB) identity.Store { return identity.NewMemoryStore() })
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		identitytest.Run(t, func(t testing.TB) identity.Store { return openTest(t).Identity() })
	})
	t.Run("cached sqlite", func(t *testing.T) {
		t.Parallel()
		identitytest.Run(t, func(t testing.TB) identity.Store { return identity.NewCachedStore(openTest(t).Identity()) })
	})
}

var (
	t0      = identitytest.T0
	project = identitytest.Project
	session = identitytest.Session
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestTimesStoredInUTCWithNanoseconds(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("CEST", 2*3600))
	must(t, db.CreateProject(ctx, identity.Project{Name: "web", CreatedAt: created}))
	got, err := db.GetProject(ctx, "web")
	must(t, err)
	if !got.CreatedAt.Equal(created) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %s, want %s", got.CreatedAt, created.UTC())
	}
	var stored string
	must(t, db.r.QueryRowContext(ctx, "SELECT created_at FROM projects").Scan(&stored))
	if want := "2025-01-02T01:04:05.000000006Z"; stored != want {
		t.Errorf("stored created_at = %q, want %q", stored, want)
	}
	err = db.CreateProject(ctx, identity.Project{Name: "far", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	if want := `create project "far": time 10000-01-01 00:00:00 +0000 UTC: year outside [0,9999]`; err == nil || err.Error() != want {
		t.Errorf("CreateProject in year 10000: %v, want %q", err, want)
	}
}

func TestIdentitySurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(ctx, path)
	must(t, err)
	must(t, db.CreateProject(ctx, project("web")))
	must(t, db.CreateSession(ctx, session("s1", "web", t0)))
	must(t, db.PutMeta(ctx, "admin", []byte("h")))
	must(t, db.Close())

	db = openAt(t, path)
	p, err := db.GetProject(ctx, "web")
	must(t, err)
	equal(t, "GetProject", p, project("web"))
	s, err := db.GetSession(ctx, "s1")
	must(t, err)
	equal(t, "GetSession", s, session("s1", "web", t0))
	m, err := db.GetMeta(ctx, "admin")
	must(t, err)
	equal(t, "GetMeta", m, []byte("h"))
}

// TestUpdateCallbackPanics checks that a panicking callback leaves no
// transaction open on the writer connection.
func TestUpdateCallbackPanics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	must(t, db.CreateProject(ctx, project("web")))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("UpdateProject did not pass the panic on")
			}
		}()
		db.UpdateProject(ctx, "web", func(p *identity.Project) error {
			p.Frozen = true
			panic("callback bug")
		})
	}()
	must(t, db.UpdateProject(ctx, "web", func(p *identity.Project) error {
		p.FrozenBy = "alice"
		return nil
	}))
	want := project("web")
	want.FrozenBy = "alice"
	got, err := db.GetProject(ctx, "web")
	must(t, err)
	equal(t, "GetProject", got, want)
	if _, err := db.Audit().Append(ctx, record("r1")); err != nil {
		t.Errorf("Append after the panic: %v", err)
	}
}

// TestReadsDuringUpdate checks that reads are not blocked behind a write
// transaction, and see the last commit until it ends.
func TestReadsDuringUpdate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	must(t, db.CreateProject(ctx, project("web")))
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- db.UpdateProject(ctx, "web", func(p *identity.Project) error {
			p.Frozen = true
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	// While the update holds the writer, readers see the last commit.
	got, err := db.GetProject(ctx, "web")
	must(t, err)
	equal(t, "GetProject during update", got, project("web"))
	close(release)
	must(t, <-done)
	got, err = db.GetProject(ctx, "web")
	must(t, err)
	if !got.Frozen {
		t.Errorf("GetProject after update: not frozen")
	}
}
