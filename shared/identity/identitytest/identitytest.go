// Package identitytest is the conformance suite of identity.Store
// adapters: the in-memory store, SQLite and DynamoDB run the same table.
package identitytest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/identity"
)

// T0 is the creation time of the records the builders make.
var T0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

var errStop = errors.New("stop")

// Project is a project created at T0, with an enrollment hash.
func Project(name string) identity.Project {
	return identity.Project{Name: name, CreatedAt: T0, EnrollHash: []byte("hash-of-" + name)}
}

// Agent is an agent created at T0.
func Agent(project, name string) identity.Agent {
	return identity.Agent{Project: project, Name: name, CreatedAt: T0}
}

// Session is a session of agent claude with a label and a token hash,
// living 12 hours from created.
func Session(id, project string, created time.Time) identity.Session {
	return identity.Session{ID: id, Project: project, Agent: "claude", Labels: map[string]string{"team": "infra"},
		CreatedAt: created, ExpiresAt: created.Add(12 * time.Hour), TokenHash: []byte("hash-of-" + id)}
}

// Run checks the behaviour every identity.Store shows, the reference
// being identity.MemoryStore; open returns a new, empty store for each
// subtest, which run in parallel.
func Run(t *testing.T, open func(testing.TB) identity.Store) {
	tests := []struct {
		name string
		run  func(context.Context, *testing.T, identity.Store)
	}{
		{"project round trip", func(ctx context.Context, t *testing.T, st identity.Store) {
			want := Project("web")
			want.Frozen, want.FrozenReason, want.FrozenBy = true, "incident 7", "alice"
			must(t, st.CreateProject(ctx, want))
			got, err := st.GetProject(ctx, "web")
			must(t, err)
			equal(t, "GetProject", got, want)
		}},
		{"project without enrollment hash", func(ctx context.Context, t *testing.T, st identity.Store) {
			want := identity.Project{Name: "web", CreatedAt: T0}
			must(t, st.CreateProject(ctx, want))
			got, err := st.GetProject(ctx, "web")
			must(t, err)
			equal(t, "GetProject", got, want)
		}},
		{"create project twice", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.CreateProject(ctx, Project("web")))
			again := Project("web")
			again.FrozenReason = "second"
			isErr(t, "CreateProject", st.CreateProject(ctx, again), identity.ErrExists)
			got, err := st.GetProject(ctx, "web")
			must(t, err)
			equal(t, "GetProject", got, Project("web"))
		}},
		{"get missing project", func(ctx context.Context, t *testing.T, st identity.Store) {
			_, err := st.GetProject(ctx, "web")
			isErr(t, "GetProject", err, identity.ErrNotFound)
		}},
		{"list projects by name", func(ctx context.Context, t *testing.T, st identity.Store) {
			got, err := st.ListProjects(ctx)
			must(t, err)
			if len(got) != 0 {
				t.Errorf("ListProjects of an empty store = %v", got)
			}
			for _, n := range []string{"web", "api", "Zeta", "db"} {
				must(t, st.CreateProject(ctx, Project(n)))
			}
			got, err = st.ListProjects(ctx)
			must(t, err)
			equal(t, "ListProjects", got, []identity.Project{Project("Zeta"), Project("api"), Project("db"), Project("web")})
		}},
		{"update project", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.CreateProject(ctx, Project("web")))
			must(t, st.UpdateProject(ctx, "web", func(p *identity.Project) error {
				equal(t, "project passed to update", *p, Project("web"))
				p.Frozen, p.FrozenBy, p.FrozenReason, p.EnrollHash = true, "bob", "leak", []byte("new")
				return nil
			}))
			want := Project("web")
			want.Frozen, want.FrozenBy, want.FrozenReason, want.EnrollHash = true, "bob", "leak", []byte("new")
			got, err := st.GetProject(ctx, "web")
			must(t, err)
			equal(t, "GetProject", got, want)
		}},
		{"update project callback error aborts", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.CreateProject(ctx, Project("web")))
			err := st.UpdateProject(ctx, "web", func(p *identity.Project) error {
				p.Frozen = true
				return errStop
			})
			isErr(t, "UpdateProject", err, errStop)
			got, err := st.GetProject(ctx, "web")
			must(t, err)
			equal(t, "GetProject", got, Project("web"))
		}},
		{"update missing project", func(ctx context.Context, t *testing.T, st identity.Store) {
			err := st.UpdateProject(ctx, "web", func(*identity.Project) error {
				t.Error("update called for a missing project")
				return nil
			})
			isErr(t, "UpdateProject", err, identity.ErrNotFound)
		}},
		{"concurrent updates do not lose writes", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.CreateProject(ctx, Project("web")))
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					err := st.UpdateProject(ctx, "web", func(p *identity.Project) error {
						p.FrozenReason += "x"
						return nil
					})
					if err != nil {
						t.Errorf("UpdateProject: %v", err)
					}
				})
			}
			wg.Wait()
			got, err := st.GetProject(ctx, "web")
			must(t, err)
			if len(got.FrozenReason) != 20 {
				t.Errorf("FrozenReason = %q after 20 appends", got.FrozenReason)
			}
		}},
		{"put agent creates only if absent", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.PutAgent(ctx, Agent("web", "claude")))
			again := Agent("web", "claude")
			again.CreatedAt, again.Killed, again.KillReason = T0.Add(time.Hour), true, "second put"
			must(t, st.PutAgent(ctx, again))
			got, err := st.GetAgent(ctx, "web", "claude")
			must(t, err)
			equal(t, "GetAgent", got, Agent("web", "claude"))
		}},
		{"agents are per project", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.PutAgent(ctx, Agent("web", "claude")))
			_, err := st.GetAgent(ctx, "api", "claude")
			isErr(t, "GetAgent", err, identity.ErrNotFound)
			_, err = st.GetAgent(ctx, "web", "codex")
			isErr(t, "GetAgent", err, identity.ErrNotFound)
		}},
		{"update agent", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.PutAgent(ctx, Agent("web", "claude")))
			must(t, st.UpdateAgent(ctx, "web", "claude", func(a *identity.Agent) error {
				a.Killed, a.KilledBy, a.KillReason = true, "alice", "loop"
				return nil
			}))
			want := Agent("web", "claude")
			want.Killed, want.KilledBy, want.KillReason = true, "alice", "loop"
			got, err := st.GetAgent(ctx, "web", "claude")
			must(t, err)
			equal(t, "GetAgent", got, want)
		}},
		{"update agent callback error aborts", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.PutAgent(ctx, Agent("web", "claude")))
			err := st.UpdateAgent(ctx, "web", "claude", func(a *identity.Agent) error {
				a.Killed = true
				return errStop
			})
			isErr(t, "UpdateAgent", err, errStop)
			got, err := st.GetAgent(ctx, "web", "claude")
			must(t, err)
			equal(t, "GetAgent", got, Agent("web", "claude"))
		}},
		{"update missing agent", func(ctx context.Context, t *testing.T, st identity.Store) {
			err := st.UpdateAgent(ctx, "web", "claude", func(*identity.Agent) error { return nil })
			isErr(t, "UpdateAgent", err, identity.ErrNotFound)
		}},
		{"session round trip", func(ctx context.Context, t *testing.T, st identity.Store) {
			full := Session("s1", "web", T0)
			full.Labels["env"] = "prod"
			full.Killed, full.KilledBy, full.KillReason = true, "alice", "done"
			full.Paused, full.PausedBy, full.PauseReason = true, "watchdog", "looping"
			bare := identity.Session{ID: "s2", Project: "web", Agent: "codex", CreatedAt: T0, ExpiresAt: T0}
			empty := Session("s3", "web", T0)
			empty.Labels = map[string]string{}
			for _, want := range []identity.Session{full, bare, empty} {
				must(t, st.CreateSession(ctx, want))
				got, err := st.GetSession(ctx, want.ID)
				must(t, err)
				equal(t, "GetSession", got, want)
			}
		}},
		{"create session twice", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.CreateSession(ctx, Session("s1", "web", T0)))
			isErr(t, "CreateSession", st.CreateSession(ctx, Session("s1", "api", T0)), identity.ErrExists)
			got, err := st.GetSession(ctx, "s1")
			must(t, err)
			equal(t, "GetSession", got, Session("s1", "web", T0))
		}},
		{"get missing session", func(ctx context.Context, t *testing.T, st identity.Store) {
			_, err := st.GetSession(ctx, "s1")
			isErr(t, "GetSession", err, identity.ErrNotFound)
		}},
		{"list sessions oldest first", func(ctx context.Context, t *testing.T, st identity.Store) {
			a := Session("a", "web", T0.Add(2*time.Nanosecond))
			b := Session("b", "api", T0.Add(time.Nanosecond))
			c := Session("c", "web", T0.Add(-time.Hour))
			d := Session("d", "web", T0.Add(time.Hour))
			for _, s := range []identity.Session{a, b, c, d} {
				must(t, st.CreateSession(ctx, s))
			}
			for _, tc := range []struct {
				project string
				want    []identity.Session
			}{
				{"", []identity.Session{c, b, a, d}},
				{"web", []identity.Session{c, a, d}},
				{"api", []identity.Session{b}},
				{"none", nil},
			} {
				got, err := st.ListSessions(ctx, tc.project)
				must(t, err)
				if len(got) == 0 && len(tc.want) == 0 {
					continue
				}
				equal(t, fmt.Sprintf("ListSessions(%q)", tc.project), got, tc.want)
			}
		}},
		{"update session", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.CreateSession(ctx, Session("s1", "web", T0)))
			must(t, st.UpdateSession(ctx, "s1", func(s *identity.Session) error {
				s.Killed, s.KilledBy, s.KillReason = true, "admin", "kill switch"
				s.Paused, s.PausedBy, s.PauseReason = true, "watchdog", "20 errors"
				s.Labels = nil
				s.ExpiresAt = T0.Add(time.Minute)
				return nil
			}))
			want := Session("s1", "web", T0)
			want.Killed, want.KilledBy, want.KillReason = true, "admin", "kill switch"
			want.Paused, want.PausedBy, want.PauseReason = true, "watchdog", "20 errors"
			want.Labels = nil
			want.ExpiresAt = T0.Add(time.Minute)
			got, err := st.GetSession(ctx, "s1")
			must(t, err)
			equal(t, "GetSession", got, want)
		}},
		{"update session callback error aborts", func(ctx context.Context, t *testing.T, st identity.Store) {
			must(t, st.CreateSession(ctx, Session("s1", "web", T0)))
			err := st.UpdateSession(ctx, "s1", func(s *identity.Session) error {
				s.Killed = true
				return errStop
			})
			isErr(t, "UpdateSession", err, errStop)
			got, err := st.GetSession(ctx, "s1")
			must(t, err)
			equal(t, "GetSession", got, Session("s1", "web", T0))
		}},
		{"update missing session", func(ctx context.Context, t *testing.T, st identity.Store) {
			err := st.UpdateSession(ctx, "s1", func(*identity.Session) error { return nil })
			isErr(t, "UpdateSession", err, identity.ErrNotFound)
		}},
		{"meta", func(ctx context.Context, t *testing.T, st identity.Store) {
			_, err := st.GetMeta(ctx, "admin")
			isErr(t, "GetMeta", err, identity.ErrNotFound)
			v := []byte("one")
			must(t, st.PutMeta(ctx, "admin", v))
			v[0] = 'X' // the store keeps its own copy
			got, err := st.GetMeta(ctx, "admin")
			must(t, err)
			equal(t, "GetMeta", got, []byte("one"))
			got[0] = 'X'
			must(t, st.PutMeta(ctx, "other", []byte("x")))
			must(t, st.PutMeta(ctx, "admin", []byte("two")))
			got, err = st.GetMeta(ctx, "admin")
			must(t, err)
			equal(t, "GetMeta", got, []byte("two"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t.Context(), t, open(t))
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// isErr checks that err is exactly want: the stores return their sentinels
// and the callback's error unwrapped, as MemoryStore does.
func isErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if err != want {
		t.Errorf("%s: error %v, want %v", op, err, want)
	}
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}
