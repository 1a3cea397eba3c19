// Package identity holds Warden's principals — projects, their agents, and
// the agent sessions that act for them — with the credentials that prove
// them and the kill switch that stops them. Tokens are random, shown once,
// stored only as SHA-256 hashes and compared in constant time.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wardenhq/warden/policy/names"
)

// Errors returned by the service. Front ends map them to HTTP statuses:
// ErrUnauthenticated to 401, ErrRevoked to 403.
var (
	ErrNotFound        = errors.New("not found")
	ErrExists          = errors.New("already exists")
	ErrUnauthenticated = errors.New("unknown or expired credential")
	ErrRevoked         = errors.New("revoked")
	ErrInvalid         = errors.New("invalid")
	// ErrStopIncomplete: the stop is stored (the session cannot act
	// through Warden), but what Stopped does with it failed.
	ErrStopIncomplete = errors.New("stopped")
)

// revokedError says why a credential was revoked, and is ErrRevoked.
type revokedError struct{ msg string }

func (e *revokedError) Error() string        { return e.msg }
func (e *revokedError) Is(target error) bool { return target == ErrRevoked }

func revoked(format string, args ...any) error {
	return &revokedError{msg: fmt.Sprintf(format, args...)}
}

// Project is a project agents work in.
type Project struct {
	Name         string
	CreatedAt    time.Time
	Frozen       bool
	FrozenReason string
	FrozenBy     string
	// EnrollHash is the hash of the project's enrollment key secret.
	EnrollHash []byte
}

// Agent is a named agent of a project. Agents come into being at their
// first login; killing one stops all its sessions, present and future.
type Agent struct {
	Project    string
	Name       string
	CreatedAt  time.Time
	Killed     bool
	KillReason string
	KilledBy   string
}

// Session is one agent session: the identity every request is made under.
type Session struct {
	ID         string
	Project    string
	Agent      string
	Labels     map[string]string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	Killed     bool
	KillReason string
	KilledBy   string
	// Paused stops the session until someone resumes it: the watchdog
	// pauses a session that behaves like a runaway loop.
	Paused      bool
	PauseReason string
	PausedBy    string
	// TokenHash is the hash of the session token's secret.
	TokenHash []byte
}

// Store persists projects, agents and sessions. Implementations are safe
// for concurrent use; Update functions run atomically.
type Store interface {
	CreateProject(ctx context.Context, p Project) error
	GetProject(ctx context.Context, name string) (Project, error)
	ListProjects(ctx context.Context) ([]Project, error)
	UpdateProject(ctx context.Context, name string, update func(*Project) error) error

	// PutAgent creates the agent if it does not exist.
	PutAgent(ctx context.Context, a Agent) error
	GetAgent(ctx context.Context, project, name string) (Agent, error)
	UpdateAgent(ctx context.Context, project, name string, update func(*Agent) error) error

	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	ListSessions(ctx context.Context, project string) ([]Session, error)
	UpdateSession(ctx context.Context, id string, update func(*Session) error) error

	// GetMeta and PutMeta keep small server-wide values such as the admin
	// token's hash.
	GetMeta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, value []byte) error
}

// Token prefixes. A token reads prefix + ID + "_" + secret, so that the
// server finds the record by ID and compares only the secret's hash.
const (
	sessionPrefix = "wdn_s_"
	enrollPrefix  = "wdn_e_"
	adminPrefix   = "wdn_a_"
	secretBytes   = 32 // 256 bits
	// MaxSessionTTL bounds how long a session may live.
	MaxSessionTTL = 30 * 24 * time.Hour
	// DefaultSessionTTL is a session's life when the login names none.
	DefaultSessionTTL = 12 * time.Hour
)

// ValidName reports whether s can name a project or an agent: the policy
// language's rule, so that every principal can be named in a policy.
func ValidName(s string) bool { return names.Valid(s) }

// Service is the identity core: enrollment, login, authentication and the
// kill switch.
type Service struct {
	store Store
	now   func() time.Time
	// Stopped, if not nil, is told each stop once it is stored: a session
	// killed or paused, an agent killed, a project frozen (the credential
	// broker denies the AWS credentials issued before it). Its error is
	// the stop's: the stop holds, and the caller reports that its AWS
	// credentials may not have been revoked.
	Stopped func(ctx context.Context, s Stop) error
}

// Stop is a session, an agent (Project and Agent) or a project stopped at
// At.
type Stop struct {
	Session, Project, Agent string
	At                      time.Time
}

// stopped tells Stopped of s.
func (s *Service) stopped(ctx context.Context, st Stop) error {
	if s.Stopped == nil {
		return nil
	}
	// The end of the current second: AWS keeps a token's issue time to
	// the second, and one issued in the second of the stop is denied too.
	st.At = s.now().UTC().Truncate(time.Second).Add(time.Second)
	if err := s.Stopped(ctx, st); err != nil {
		return fmt.Errorf("%w; its AWS credentials may not be revoked: %w", ErrStopIncomplete, err)
	}
	return nil
}

// NewService returns a service over store. now is the clock (time.Now when nil).
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return hex.EncodeToString(b), nil // hex: never contains the "_" that ends the ID
}

// ValidID reports whether s could be a session's ID: 24 lower-case hex
// digits (the credential broker's source identity).
func ValidID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func newID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// splitToken takes prefix+id+"_"+secret apart.
func splitToken(token, prefix string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok || len(token) > 512 {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// CreateProject creates a project and returns its enrollment key, which
// agents exchange for sessions. The key is shown once.
func (s *Service) CreateProject(ctx context.Context, name string) (string, error) {
	if !ValidName(name) {
		return "", fmt.Errorf("project name %q: use letters, digits, '.', '_' and '-', at most 64: %w", name, ErrInvalid)
	}
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	p := Project{Name: name, CreatedAt: s.now().UTC(), EnrollHash: hash(secret)}
	if err := s.store.CreateProject(ctx, p); err != nil {
		return "", fmt.Errorf("create project %q: %w", name, err)
	}
	return enrollPrefix + name + "_" + secret, nil
}

// RotateEnrollKey replaces a project's enrollment key; the old one stops working.
func (s *Service) RotateEnrollKey(ctx context.Context, name string) (string, error) {
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	err = s.store.UpdateProject(ctx, name, func(p *Project) error {
		p.EnrollHash = hash(secret)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("rotate enrollment key of %q: %w", name, err)
	}
	return enrollPrefix + name + "_" + secret, nil
}

// Login exchanges a project's enrollment key for a new session of the
// named agent, and returns the session with its bearer token (shown once).
func (s *Service) Login(ctx context.Context, enrollKey, agent string, labels map[string]string, ttl time.Duration) (Session, string, error) {
	project, secret, ok := splitToken(enrollKey, enrollPrefix)
	if !ok {
		return Session{}, "", fmt.Errorf("login: malformed enrollment key: %w", ErrUnauthenticated)
	}
	if !ValidName(agent) {
		return Session{}, "", fmt.Errorf("agent name %q: use letters, digits, '.', '_' and '-', at most 64: %w", agent, ErrInvalid)
	}
	switch {
	case ttl == 0:
		ttl = DefaultSessionTTL
	case ttl < time.Minute || ttl > MaxSessionTTL:
		return Session{}, "", fmt.Errorf("session ttl %s: must be between 1m and %s: %w", ttl, MaxSessionTTL, ErrInvalid)
	}
	p, err := s.store.GetProject(ctx, project)
	if errors.Is(err, ErrNotFound) || (err == nil && subtle.ConstantTimeCompare(p.EnrollHash, hash(secret)) != 1) {
		return Session{}, "", fmt.Errorf("login: enrollment key not valid: %w", ErrUnauthenticated)
	}
	if err != nil {
		return Session{}, "", fmt.Errorf("login: %w", err)
	}
	if p.Frozen {
		return Session{}, "", revoked("project %s is frozen: %s", p.Name, p.FrozenReason)
	}
	now := s.now().UTC()
	if err := s.store.PutAgent(ctx, Agent{Project: project, Name: agent, CreatedAt: now}); err != nil {
		return Session{}, "", fmt.Errorf("login: register agent: %w", err)
	}
	a, err := s.store.GetAgent(ctx, project, agent)
	if err != nil {
		return Session{}, "", fmt.Errorf("login: %w", err)
	}
	if a.Killed {
		return Session{}, "", revoked("agent %s/%s was killed: %s", project, agent, a.KillReason)
	}
	id, err := newID()
	if err != nil {
		return Session{}, "", err
	}
	secret, err = newSecret()
	if err != nil {
		return Session{}, "", err
	}
	sess := Session{ID: id, Project: project, Agent: agent, Labels: labels, CreatedAt: now,
		ExpiresAt: now.Add(ttl), TokenHash: hash(secret)}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return Session{}, "", fmt.Errorf("login: create session: %w", err)
	}
	return sess, sessionPrefix + id + "_" + secret, nil
}

// Authenticate returns the session a bearer token names, refusing a token
// that is unknown, malformed or expired (ErrUnauthenticated) and a session
// that is killed, or whose agent is killed or project frozen (ErrRevoked,
// with the reason). It runs on every request, so a kill takes effect on the
// next one.
func (s *Service) Authenticate(ctx context.Context, token string) (Session, error) {
	id, secret, ok := splitToken(token, sessionPrefix)
	if !ok {
		return Session{}, ErrUnauthenticated
	}
	sess, err := s.store.GetSession(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrUnauthenticated
	}
	if err != nil {
		return Session{}, fmt.Errorf("authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare(sess.TokenHash, hash(secret)) != 1 {
		return Session{}, ErrUnauthenticated
	}
	if !s.now().Before(sess.ExpiresAt) {
		return Session{}, fmt.Errorf("session %s expired at %s: %w", sess.ID, sess.ExpiresAt.Format(time.RFC3339), ErrUnauthenticated)
	}
	if sess.Killed {
		return sess, revoked("session %s was killed by %s: %s", sess.ID, sess.KilledBy, sess.KillReason)
	}
	if sess.Paused {
		return sess, revoked("session %s was paused by %s: %s; a human resumes it with: warden sessions resume %s", sess.ID, sess.PausedBy, sess.PauseReason, sess.ID)
	}
	st, err := s.State(ctx, sess)
	switch {
	case err != nil:
		return sess, fmt.Errorf("authenticate: %w", err)
	case st.State == "agent killed":
		return sess, revoked("agent %s/%s was killed by %s: %s", sess.Project, sess.Agent, st.By, st.Reason)
	case st.State == "project frozen":
		return sess, revoked("project %s was frozen by %s: %s", sess.Project, st.By, st.Reason)
	}
	return sess, nil
}

// Standing is what stops an unexpired, unkilled session, if anything: its
// agent killed or its project frozen. State is "" when nothing does.
type Standing struct {
	State  string // "", "agent killed" or "project frozen"
	Reason string
	By     string
}

// StandingReader is a Store that reads an agent and its project in one
// round trip, which State then uses: a network store saves a call on every
// request.
type StandingReader interface {
	// GetAgentAndProject returns both, or the error of the first missing
	// (the agent's first), as GetAgent and GetProject would.
	GetAgentAndProject(ctx context.Context, project, agent string) (Agent, Project, error)
}

// State reports whether the session's agent or project stops it.
func (s *Service) State(ctx context.Context, sess Session) (Standing, error) {
	a, p, err := s.agentAndProject(ctx, sess.Project, sess.Agent)
	if err != nil {
		return Standing{}, err
	}
	if a.Killed {
		return Standing{"agent killed", a.KillReason, a.KilledBy}, nil
	}
	if p.Frozen {
		return Standing{"project frozen", p.FrozenReason, p.FrozenBy}, nil
	}
	return Standing{}, nil
}

func (s *Service) agentAndProject(ctx context.Context, project, agent string) (Agent, Project, error) {
	if r, ok := s.store.(StandingReader); ok {
		a, p, err := r.GetAgentAndProject(ctx, project, agent)
		if err != nil {
			return a, p, fmt.Errorf("agent %s/%s: %w", project, agent, err)
		}
		return a, p, nil
	}
	a, err := s.store.GetAgent(ctx, project, agent)
	if err != nil {
		return Agent{}, Project{}, fmt.Errorf("agent %s/%s: %w", project, agent, err)
	}
	p, err := s.store.GetProject(ctx, project)
	if err != nil {
		return Agent{}, Project{}, fmt.Errorf("project %s: %w", project, err)
	}
	return a, p, nil
}

// KillSession stops a session for good.
func (s *Service) KillSession(ctx context.Context, id, by, reason string) error {
	err := s.store.UpdateSession(ctx, id, func(sess *Session) error {
		sess.Killed, sess.KilledBy, sess.KillReason = true, by, reason
		return nil
	})
	if err != nil {
		return fmt.Errorf("kill session %s: %w", id, err)
	}
	return s.stopped(ctx, Stop{Session: id})
}

// PauseSession stops a session until ResumeSession. Pausing a paused
// session keeps the first pause's reason.
func (s *Service) PauseSession(ctx context.Context, id, by, reason string) error {
	err := s.store.UpdateSession(ctx, id, func(sess *Session) error {
		if !sess.Paused {
			sess.Paused, sess.PausedBy, sess.PauseReason = true, by, reason
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pause session %s: %w", id, err)
	}
	return s.stopped(ctx, Stop{Session: id})
}

// ResumeSession lets a paused session go on. A killed session stays killed.
func (s *Service) ResumeSession(ctx context.Context, id string) error {
	err := s.store.UpdateSession(ctx, id, func(sess *Session) error {
		sess.Paused, sess.PausedBy, sess.PauseReason = false, "", ""
		return nil
	})
	if err != nil {
		return fmt.Errorf("resume session %s: %w", id, err)
	}
	return nil
}

// KillAgent stops every session of an agent, and its future logins.
func (s *Service) KillAgent(ctx context.Context, project, agent, by, reason string) error {
	err := s.store.UpdateAgent(ctx, project, agent, func(a *Agent) error {
		a.Killed, a.KilledBy, a.KillReason = true, by, reason
		return nil
	})
	if err != nil {
		return fmt.Errorf("kill agent %s/%s: %w", project, agent, err)
	}
	return s.stopped(ctx, Stop{Project: project, Agent: agent})
}

// FreezeProject stops every session of a project until it is unfrozen.
func (s *Service) FreezeProject(ctx context.Context, name, by, reason string) error {
	return s.setFrozen(ctx, name, true, by, reason)
}

// UnfreezeProject lets a frozen project's sessions act again.
func (s *Service) UnfreezeProject(ctx context.Context, name, by string) error {
	return s.setFrozen(ctx, name, false, by, "")
}

func (s *Service) setFrozen(ctx context.Context, name string, frozen bool, by, reason string) error {
	err := s.store.UpdateProject(ctx, name, func(p *Project) error {
		p.Frozen, p.FrozenBy, p.FrozenReason = frozen, by, reason
		return nil
	})
	if err != nil {
		return fmt.Errorf("freeze project %s: %w", name, err)
	}
	if frozen {
		return s.stopped(ctx, Stop{Project: name})
	}
	return nil
}

// Sessions lists the sessions of a project, or all when project is "".
func (s *Service) Sessions(ctx context.Context, project string) ([]Session, error) {
	return s.store.ListSessions(ctx, project)
}

// Session returns one session.
func (s *Service) Session(ctx context.Context, id string) (Session, error) {
	return s.store.GetSession(ctx, id)
}

// Projects lists the projects.
func (s *Service) Projects(ctx context.Context) ([]Project, error) {
	return s.store.ListProjects(ctx)
}

const adminMetaKey = "admin-token-hash"

// EnsureAdminToken creates the admin token on first start and returns it;
// on later starts it returns "" (the token is stored only as a hash).
func (s *Service) EnsureAdminToken(ctx context.Context) (string, error) {
	if _, err := s.store.GetMeta(ctx, adminMetaKey); err == nil {
		return "", nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	return s.ResetAdminToken(ctx)
}

// ResetAdminToken replaces the admin token and returns the new one.
func (s *Service) ResetAdminToken(ctx context.Context) (string, error) {
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	if err := s.store.PutMeta(ctx, adminMetaKey, hash(secret)); err != nil {
		return "", fmt.Errorf("store admin token: %w", err)
	}
	return adminPrefix + "admin_" + secret, nil
}

// CheckAdmin verifies an admin token.
func (s *Service) CheckAdmin(ctx context.Context, token string) error {
	_, secret, ok := splitToken(token, adminPrefix)
	if !ok {
		return ErrUnauthenticated
	}
	want, err := s.store.GetMeta(ctx, adminMetaKey)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrUnauthenticated
		}
		return fmt.Errorf("check admin token: %w", err)
	}
	if subtle.ConstantTimeCompare(want, hash(secret)) != 1 {
		return ErrUnauthenticated
	}
	return nil
}
