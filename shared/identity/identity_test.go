package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T) (*Service, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	return NewService(NewMemoryStore(), c.now), c
}

func TestLoginAndAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk := newService(t)
	key, err := s.CreateProject(ctx, "project-a")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "wdn_e_project-a_") || len(key) != len("wdn_e_project-a_")+64 {
		t.Fatalf("enrollment key %q", key)
	}
	sess, token, err := s.Login(ctx, key, "claude", map[string]string{"team": "web"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Authenticate(ctx, token)
	if err != nil || got.ID != sess.ID || got.Agent != "claude" || got.Labels["team"] != "web" {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "wdn_s_", token + "x", strings.Replace(token, sess.ID, "ffff", 1), "Bearer " + token, key} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", bad, err)
		}
	}
	clk.t = clk.t.Add(time.Hour)
	if _, err := s.Authenticate(ctx, token); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired session: %v", err)
	}
	if _, _, err := s.Login(ctx, key+"x", "claude", nil, 0); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("wrong enrollment key: %v", err)
	}
	if _, _, err := s.Login(ctx, key, "no spaces", nil, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad agent name: %v", err)
	}
	if _, _, err := s.Login(ctx, key, "a", nil, 365*24*time.Hour); !errors.Is(err, ErrInvalid) {
		t.Errorf("ttl too long: %v", err)
	}
	if _, err := s.CreateProject(ctx, "project-a"); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate project: %v", err)
	}
}

func TestKillSwitch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	key, _ := s.CreateProject(ctx, "p")
	login := func(agent string) (Session, string) {
		t.Helper()
		sess, tok, err := s.Login(ctx, key, agent, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return sess, tok
	}
	s1, t1 := login("a")
	_, t2 := login("a")
	_, t3 := login("b")

	if err := s.KillSession(ctx, s1.ID, "admin:alice", "looping"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, t1); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "killed by admin:alice: looping") {
		t.Errorf("killed session: %v", err)
	}
	if _, err := s.Authenticate(ctx, t2); err != nil {
		t.Errorf("other session of the agent: %v", err)
	}
	if err := s.KillAgent(ctx, "p", "a", "admin", "compromised"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, t2); !errors.Is(err, ErrRevoked) {
		t.Errorf("session of killed agent: %v", err)
	}
	if _, _, err := s.Login(ctx, key, "a", nil, 0); !errors.Is(err, ErrRevoked) {
		t.Errorf("login of killed agent: %v", err)
	}
	if err := s.FreezeProject(ctx, "p", "admin", "incident"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, t3); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "frozen") {
		t.Errorf("session of frozen project: %v", err)
	}
	if err := s.UnfreezeProject(ctx, "p", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, t3); err != nil {
		t.Errorf("after unfreeze: %v", err)
	}
	if err := s.KillSession(ctx, "nope", "admin", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("kill unknown session: %v", err)
	}
}

func TestAdminToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	tok, err := s.EnsureAdminToken(ctx)
	if err != nil || tok == "" {
		t.Fatalf("first EnsureAdminToken = %q, %v", tok, err)
	}
	if again, err := s.EnsureAdminToken(ctx); err != nil || again != "" {
		t.Fatalf("second EnsureAdminToken = %q, %v; want it kept secret", again, err)
	}
	if err := s.CheckAdmin(ctx, tok); err != nil {
		t.Errorf("CheckAdmin(valid) = %v", err)
	}
	if err := s.CheckAdmin(ctx, tok[:len(tok)-1]+"A"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("CheckAdmin(wrong) = %v", err)
	}
	newTok, _ := s.ResetAdminToken(ctx)
	if err := s.CheckAdmin(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("old token after reset: %v", err)
	}
	if err := s.CheckAdmin(ctx, newTok); err != nil {
		t.Errorf("new token: %v", err)
	}
}

func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	key, _ := s.CreateProject(ctx, "p")
	sess, tok, err := s.Login(ctx, key, "a", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PauseSession(ctx, sess.ID, "watchdog", "20 upstream errors in a row"); err != nil {
		t.Fatal(err)
	}
	s.PauseSession(ctx, sess.ID, "watchdog", "a second reason") // the first reason stays
	_, err = s.Authenticate(ctx, tok)
	want := "session " + sess.ID + " was paused by watchdog: 20 upstream errors in a row; a human resumes it with: warden sessions resume " + sess.ID
	if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("a paused session: %v", err)
	}
	if err := s.ResumeSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	// Resuming does not undo a kill.
	s.PauseSession(ctx, sess.ID, "watchdog", "again")
	s.KillSession(ctx, sess.ID, "admin:alice", "enough")
	s.ResumeSession(ctx, sess.ID)
	if _, err := s.Authenticate(ctx, tok); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("a killed session after resume: %v", err)
	}
	if err := s.PauseSession(ctx, "nope", "w", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pause of an unknown session: %v", err)
	}
}
