// Package server is the HTTP face of the local Warden: the hook endpoints,
// agent login, the admin API the CLI calls, health and readiness. Lambda
// functions serve the same handlers behind API Gateway.
package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/broker"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/hooks"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/pipeline"
)

// maxBody bounds admin and login request bodies.
const maxBody = 64 << 10

// Server holds what the handlers need.
type Server struct {
	Identity *identity.Service
	Pipeline *pipeline.Pipeline
	Audit    audit.Sink
	Trail    audit.Reader
	Query    audit.Querier
	Stored   audit.StoredReader
	Digests  audit.DigestStore
	// Archive holds the trail's archived batches; nil when archiving is off.
	Archive audit.ArchiveStore
	// Approvals is the approval workflow; nil when there is none.
	Approvals *approval.Service
	// Slack, if not nil, takes Slack's interactivity requests (clicks on
	// approvals) at POST /v1/slack/interactivity; Slack's signature is
	// their authentication.
	Slack http.Handler
	// LLM is the model gateway (llm.Gateway); nil to serve no model APIs.
	LLM interface{ Register(*http.ServeMux) }
	// Broker issues AWS credentials to sessions (broker.Broker); nil when
	// it is off.
	Broker interface {
		Issue(ctx context.Context, token string, r broker.Request) (broker.Credentials, *pipeline.Refusal)
	}
	// Git is the git remote (gitproxy.Proxy) at /git/, for the hosts
	// GitHosts; nil when no upstream is configured. GitMaxPush is the
	// largest push it takes, when it has a limit (on AWS).
	Git        http.Handler
	GitHosts   []string
	GitMaxPush int64
	// Budgets reads the budgets' counters, by the policy of Policy.
	Budgets *budget.Service
	Policy  pipeline.PolicySource
	// Resumed, if not nil, is told each session a human resumes (the
	// watchdog starts its counts over).
	Resumed func(ctx context.Context, session string) error
	// PublicKey checks the trail's signed digests; it is published.
	PublicKey ed25519.PublicKey
	Log       *slog.Logger
	// Ready reports whether the server can serve: store reachable, policy loaded.
	Ready func(ctx context.Context) error
	// AdminPrincipal, if not nil, replaces the admin token: it returns the
	// identity the platform authenticated for the request (on AWS, the IAM
	// principal API Gateway verified the SigV4 signature of), and false
	// when there is none, which refuses the request.
	AdminPrincipal func(*http.Request) (string, bool)
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	h := &hooks.Handler{Pipeline: s.Pipeline, Log: s.Log}
	if s.Approvals != nil {
		h.Approvals = s.Approvals
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("POST /v1/hooks/pre-tool-use", h.PreToolUse)
	mux.HandleFunc("POST /v1/hooks/post-tool-use", h.PostToolUse)
	mux.HandleFunc("POST /v1/agent/login", s.login)
	mux.HandleFunc("GET /v1/audit/public-key", s.publicKey)
	mux.HandleFunc("GET /v1/aws", s.awsStatus)
	mux.Handle("/git/", s.git())
	mux.HandleFunc("GET /v1/git", s.gitStatus)
	mux.HandleFunc("POST "+AWSCredentialsPath, s.awsCredentials)
	if s.LLM != nil {
		s.LLM.Register(mux)
	}

	admin := http.NewServeMux()
	admin.HandleFunc("POST /v1/admin/projects", s.createProject)
	admin.HandleFunc("GET /v1/admin/projects", s.listProjects)
	admin.HandleFunc("POST /v1/admin/projects/{project}/freeze", s.freezeProject(true))
	admin.HandleFunc("POST /v1/admin/projects/{project}/unfreeze", s.freezeProject(false))
	admin.HandleFunc("POST /v1/admin/projects/{project}/enroll-key", s.rotateEnrollKey)
	admin.HandleFunc("POST /v1/admin/projects/{project}/agents/{agent}/kill", s.killAgent)
	admin.HandleFunc("GET /v1/admin/sessions", s.listSessions)
	admin.HandleFunc("GET /v1/admin/sessions/{id}", s.showSession)
	admin.HandleFunc("GET /v1/admin/sessions/{id}/replay", s.replay)
	admin.HandleFunc("POST /v1/admin/sessions/{id}/kill", s.killSession)
	admin.HandleFunc("GET /v1/admin/sessions/{id}/budgets", s.sessionBudgets)
	admin.HandleFunc("POST /v1/admin/sessions/{id}/pause", s.pauseSession(true))
	admin.HandleFunc("POST /v1/admin/sessions/{id}/resume", s.pauseSession(false))
	admin.HandleFunc("GET /v1/admin/audit", s.auditTail)
	admin.HandleFunc("GET /v1/admin/audit/verify", s.auditVerify)
	admin.HandleFunc("GET /v1/admin/audit/digests", s.auditDigests)
	s.approvalRoutes(mux, admin)
	if s.Slack != nil {
		mux.Handle("POST /v1/slack/interactivity", s.Slack)
	}
	admin.HandleFunc("GET /v1/admin/audit/archive", s.archiveList)
	admin.HandleFunc("GET /v1/admin/audit/archive/{key...}", s.archiveObject)
	mux.Handle("/v1/admin/", s.requireAdmin(admin))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is every error body: a message and a stable code.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func fail(w http.ResponseWriter, status int, code, format string, args ...any) {
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, args...), Code: code})
}

// failErr converts a core error to a client error at the edge: known
// classes get their status, anything else is internal and not echoed.
func (s *Server) failErr(w http.ResponseWriter, op string, err error) {
	switch {
	case errors.Is(err, identity.ErrNotFound):
		fail(w, http.StatusNotFound, "not_found", "%s: not found", op)
	case errors.Is(err, identity.ErrExists):
		fail(w, http.StatusConflict, "exists", "%s: already exists", op)
	case errors.Is(err, identity.ErrInvalid):
		fail(w, http.StatusBadRequest, "invalid", "%v", err)
	case errors.Is(err, identity.ErrUnauthenticated):
		fail(w, http.StatusUnauthorized, "unauthenticated", "%v", err)
	case errors.Is(err, identity.ErrRevoked):
		fail(w, http.StatusForbidden, "revoked", "%v", err)
	default:
		s.Log.Error(op, "err", err)
		fail(w, http.StatusInternalServerError, "internal", "%s failed; see the server log", op)
	}
}

// stopFailed answers the error of a stop (a kill, a pause, a freeze) that
// did not happen, and reports whether it did. A stop that holds, but whose
// AWS credentials may not be revoked (identity.ErrStopIncomplete), is the
// caller's to record first, and then revocationFailed's to answer.
func (s *Server) stopFailed(w http.ResponseWriter, op string, err error) bool {
	if err == nil || errors.Is(err, identity.ErrStopIncomplete) {
		return false
	}
	s.failErr(w, op, err)
	return true
}

// revocationFailed answers a stop that holds but whose AWS credentials may
// not be revoked: 502, saying so.
func (s *Server) revocationFailed(w http.ResponseWriter, err error) bool {
	if err == nil {
		return false
	}
	s.Log.Error("revoke AWS credentials", "err", err)
	fail(w, http.StatusBadGateway, "revocation_failed", "%v: try again", err)
	return true
}

// decode reads a JSON body into v, strictly and within the size limit.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		fail(w, http.StatusBadRequest, "bad_request", "request body is unreadable or over %d bytes", maxBody)
		return false
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "request body: %v", err)
		return false
	}
	return true
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(r.Context()); err != nil {
			fail(w, http.StatusServiceUnavailable, "not_ready", "%v", err)
			return
		}
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
}

func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.AdminPrincipal != nil {
			p, ok := s.AdminPrincipal(r)
			if !ok {
				fail(w, http.StatusUnauthorized, "unauthenticated", "the admin API needs requests signed with AWS credentials (SigV4)")
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
			return
		}
		if err := s.Identity.CheckAdmin(r.Context(), hooks.BearerToken(r)); err != nil {
			if errors.Is(err, identity.ErrUnauthenticated) {
				fail(w, http.StatusUnauthorized, "unauthenticated", "the admin API needs the admin token (Authorization: Bearer …)")
				return
			}
			s.failErr(w, "check admin token", err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type principalKey struct{}

// actor names who made an administrative change, for the audit trail: the
// authenticated principal when the platform gives one, else "admin", with
// the name the CLI sends in X-Warden-Actor.
func actor(r *http.Request) string {
	who := "admin"
	if p, ok := r.Context().Value(principalKey{}).(string); ok {
		who = p
	}
	if a := r.Header.Get("X-Warden-Actor"); a != "" && len(a) <= 128 {
		return who + ":" + a
	}
	return who
}

// record writes an administrative audit record. The change has happened;
// a failure is logged loudly.
func (s *Server) record(ctx context.Context, rec audit.Record) {
	rec.ID, rec.Time = audit.NewID(), time.Now().UTC()
	if _, err := s.Audit.Append(ctx, rec); err != nil {
		s.Log.Error("audit append failed", "code", rec.Code, "err", err)
	}
}

// LoginRequest is the body of POST /v1/agent/login.
type LoginRequest struct {
	EnrollKey string            `json:"enroll_key"`
	Agent     string            `json:"agent"`
	Labels    map[string]string `json:"labels,omitempty"`
	TTL       string            `json:"ttl,omitempty"`
}

// SessionView is a session as the API shows it (never the token hash).
type SessionView struct {
	ID         string            `json:"id"`
	Project    string            `json:"project"`
	Agent      string            `json:"agent"`
	Labels     map[string]string `json:"labels,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	ExpiresAt  time.Time         `json:"expires_at"`
	State      string            `json:"state"`
	KillReason string            `json:"kill_reason,omitempty"`
	KilledBy   string            `json:"killed_by,omitempty"`
	// PauseReason and PausedBy say why a paused session waits.
	PauseReason string `json:"pause_reason,omitempty"`
	PausedBy    string `json:"paused_by,omitempty"`
	Token       string `json:"token,omitempty"` // only in the login answer
}

func view(sess identity.Session, now time.Time) SessionView {
	v := SessionView{ID: sess.ID, Project: sess.Project, Agent: sess.Agent, Labels: sess.Labels,
		CreatedAt: sess.CreatedAt, ExpiresAt: sess.ExpiresAt, State: "active", KillReason: sess.KillReason, KilledBy: sess.KilledBy,
		PauseReason: sess.PauseReason, PausedBy: sess.PausedBy}
	switch {
	case sess.Killed:
		v.State = "killed"
	case sess.Paused:
		v.State = "paused"
	case !now.Before(sess.ExpiresAt):
		v.State = "expired"
	}
	return v
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if !decode(w, r, &req) {
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			fail(w, http.StatusBadRequest, "invalid", "ttl %q is not a duration such as 12h", req.TTL)
			return
		}
		ttl = d
	}
	sess, token, err := s.Identity.Login(r.Context(), req.EnrollKey, req.Agent, req.Labels, ttl)
	if err != nil {
		s.failErr(w, "login", err)
		return
	}
	s.record(r.Context(), audit.Record{Code: audit.SessionLogin, Project: sess.Project, Agent: sess.Agent, Session: sess.ID})
	v := view(sess, time.Now())
	v.Token = token
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &req) {
		return
	}
	key, err := s.Identity.CreateProject(r.Context(), req.Name)
	if err != nil {
		s.failErr(w, "create project "+strconv.Quote(req.Name), err)
		return
	}
	s.record(r.Context(), audit.Record{Code: audit.ProjectCreated, Project: req.Name, Actor: actor(r)})
	writeJSON(w, http.StatusCreated, map[string]string{"name": req.Name, "enroll_key": key})
}

func (s *Server) rotateEnrollKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("project")
	key, err := s.Identity.RotateEnrollKey(r.Context(), name)
	if err != nil {
		s.failErr(w, "rotate enrollment key of "+strconv.Quote(name), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": name, "enroll_key": key})
}

// ProjectView is a project as the API shows it.
type ProjectView struct {
	Name         string    `json:"name"`
	CreatedAt    time.Time `json:"created_at"`
	State        string    `json:"state"`
	FrozenReason string    `json:"frozen_reason,omitempty"`
	FrozenBy     string    `json:"frozen_by,omitempty"`
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := s.Identity.Projects(r.Context())
	if err != nil {
		s.failErr(w, "list projects", err)
		return
	}
	out := []ProjectView{}
	for _, p := range ps {
		v := ProjectView{Name: p.Name, CreatedAt: p.CreatedAt, State: "active", FrozenReason: p.FrozenReason, FrozenBy: p.FrozenBy}
		if p.Frozen {
			v.State = "frozen"
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// readReason reads the reason of an administrative change. Kills and
// freezes must say why: the reason goes to the audit trail and to the
// agents they stop.
func readReason(w http.ResponseWriter, r *http.Request, what string, required bool) (string, bool) {
	var req reasonBody
	if !decode(w, r, &req) {
		return "", false
	}
	if required && req.Reason == "" {
		fail(w, http.StatusBadRequest, "invalid", "give a reason for %s", what)
		return "", false
	}
	return req.Reason, true
}

func (s *Server) freezeProject(freeze bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reason, ok := readReason(w, r, "freezing the project", freeze)
		if !ok {
			return
		}
		name := r.PathValue("project")
		var err error
		code := audit.ProjectUnfrozen
		if freeze {
			code = audit.ProjectFrozen
			err = s.Identity.FreezeProject(r.Context(), name, actor(r), reason)
		} else {
			err = s.Identity.UnfreezeProject(r.Context(), name, actor(r))
		}
		if s.stopFailed(w, "freeze project "+strconv.Quote(name), err) {
			return
		}
		s.record(r.Context(), audit.Record{Code: code, Project: name, Actor: actor(r), Reason: reason})
		if s.revocationFailed(w, err) {
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"name": name, "state": map[bool]string{true: "frozen", false: "active"}[freeze]})
	}
}

func (s *Server) killAgent(w http.ResponseWriter, r *http.Request) {
	reason, ok := readReason(w, r, "killing the agent", true)
	if !ok {
		return
	}
	project, agent := r.PathValue("project"), r.PathValue("agent")
	err := s.Identity.KillAgent(r.Context(), project, agent, actor(r), reason)
	if s.stopFailed(w, "kill agent "+project+"/"+agent, err) {
		return
	}
	s.record(r.Context(), audit.Record{Code: audit.AgentKilled, Project: project, Agent: agent, Actor: actor(r), Reason: reason})
	if s.revocationFailed(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"project": project, "agent": agent, "state": "killed"})
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	ss, err := s.Identity.Sessions(r.Context(), r.URL.Query().Get("project"))
	if err != nil {
		s.failErr(w, "list sessions", err)
		return
	}
	out := []SessionView{}
	for _, sess := range ss {
		v, err := s.effectiveView(r.Context(), sess)
		if err != nil {
			s.failErr(w, "list sessions", err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) showSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.Identity.Session(r.Context(), r.PathValue("id"))
	if err == nil {
		var v SessionView
		if v, err = s.effectiveView(r.Context(), sess); err == nil {
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
	s.failErr(w, "show session", err)
}

// effectiveView shows a session as Authenticate would treat it now: a
// session of a killed agent or a frozen project is shown so, with the reason.
func (s *Server) effectiveView(ctx context.Context, sess identity.Session) (SessionView, error) {
	v := view(sess, time.Now())
	if v.State != "active" {
		return v, nil
	}
	state, err := s.Identity.State(ctx, sess)
	if err != nil {
		return v, err
	}
	if state.State != "" {
		v.State, v.KillReason, v.KilledBy = state.State, state.Reason, state.By
	}
	return v, nil
}

func (s *Server) killSession(w http.ResponseWriter, r *http.Request) {
	reason, ok := readReason(w, r, "killing the session", true)
	if !ok {
		return
	}
	id := r.PathValue("id")
	sess, err := s.Identity.Session(r.Context(), id)
	if err == nil {
		err = s.Identity.KillSession(r.Context(), id, actor(r), reason)
	}
	if s.stopFailed(w, "kill session "+id, err) {
		return
	}
	s.record(r.Context(), audit.Record{Code: audit.SessionKilled, Project: sess.Project, Agent: sess.Agent, Session: id, Actor: actor(r), Reason: reason})
	if s.revocationFailed(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "state": "killed"})
}

// BudgetView is one budget's counter for the current window, as
// GET /v1/admin/sessions/{id}/budgets answers it.
type BudgetView struct {
	Budget      string    `json:"budget"`
	Scope       string    `json:"scope"`
	Key         string    `json:"key"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	SpentUSD    string    `json:"spent_usd"`
	HeldUSD     string    `json:"held_usd"`
	CapUSD      string    `json:"cap_usd,omitempty"` // absent: not capped in dollars
	SpentTokens int64     `json:"spent_tokens"`
	HeldTokens  int64     `json:"held_tokens"`
	CapTokens   int64     `json:"cap_tokens,omitempty"`
	Alerted     []int     `json:"alerted,omitempty"`
}

// sessionBudgets answers the counters of every budget that applies to a
// session: its project's, its agent's and its own.
func (s *Server) sessionBudgets(w http.ResponseWriter, r *http.Request) {
	sess, err := s.Identity.Session(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failErr(w, "read session", err)
		return
	}
	if s.Budgets == nil || s.Policy == nil {
		fail(w, http.StatusNotFound, "budgets-off", "this server keeps no budgets")
		return
	}
	p := policy.Principal{Project: sess.Project, Agent: sess.Agent, Session: sess.ID, Labels: sess.Labels}
	statuses, err := s.Budgets.Spent(r.Context(), s.Policy.Current(), p)
	if err != nil {
		s.failErr(w, "read budgets", err)
		return
	}
	out := []BudgetView{}
	for _, st := range statuses {
		v := BudgetView{Budget: st.Budget, Scope: st.Scope, Key: st.Key, WindowStart: st.Window.Start, WindowEnd: st.Window.End,
			SpentUSD: st.Spent.USD.Decimal(), HeldUSD: st.Held.USD.Decimal(), SpentTokens: st.Spent.Tokens, HeldTokens: st.Held.Tokens,
			CapTokens: st.Cap.Tokens, Alerted: st.Alerted}
		if st.Cap.USD > 0 {
			v.CapUSD = st.Cap.USD.Decimal()
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) pauseSession(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reason, ok := readReason(w, r, "pausing the session", pause)
		if !ok {
			return
		}
		id := r.PathValue("id")
		sess, err := s.Identity.Session(r.Context(), id)
		code, state := audit.SessionResumed, "resumed"
		switch {
		case err != nil:
		case pause:
			code, state = audit.SessionPaused, "paused"
			err = s.Identity.PauseSession(r.Context(), id, actor(r), reason)
		default:
			// The watchdog's counts start over first: resumed with the
			// old ones, the session could trip again at once.
			if s.Resumed != nil {
				err = s.Resumed(r.Context(), id)
			}
			if err == nil {
				err = s.Identity.ResumeSession(r.Context(), id)
			}
		}
		if s.stopFailed(w, state+" session "+id, err) {
			return
		}
		s.record(r.Context(), audit.Record{Code: code, Project: sess.Project, Agent: sess.Agent, Session: id, Actor: actor(r), Reason: reason})
		if s.revocationFailed(w, err) {
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "state": state})
	}
}

// auditTail returns records after ?after=N (or the last ?last=N records),
// waiting up to ?wait= for the first one to arrive (long polling), at most
// ?limit= (default 100, max 1000).
func (s *Server) auditTail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	if last, err := strconv.ParseInt(q.Get("last"), 10, 64); err == nil && last >= 0 {
		latest, err := s.Trail.Latest(r.Context())
		if err != nil {
			s.failErr(w, "read audit", err)
			return
		}
		after = max(latest-last, 0)
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 || limit > 1000 {
		limit = 100
	}
	wait, _ := time.ParseDuration(q.Get("wait"))
	wait = min(max(wait, 0), 60*time.Second)
	f, err := filterOf(q)
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid", "%v", err)
		return
	}
	deadline := time.Now().Add(wait)
	for {
		var recs []audit.Record
		var err error
		if f == (audit.Filter{}) {
			recs, err = s.Trail.After(r.Context(), after, limit)
		} else {
			recs, err = s.Query.Query(r.Context(), f, after, limit)
		}
		if err != nil {
			s.failErr(w, "read audit", err)
			return
		}
		if len(recs) > 0 || !time.Now().Before(deadline) {
			if recs == nil {
				recs = []audit.Record{}
			}
			writeJSON(w, http.StatusOK, recs)
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// auditVerify recomputes the whole trail's chains from the stored bytes and
// checks it against the signed digests; the answer is an audit.Report.
func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request) {
	digests, err := s.Digests.Digests(r.Context())
	if err != nil {
		s.failErr(w, "read digests", err)
		return
	}
	rep, err := audit.VerifyStored(r.Context(), s.Stored, s.PublicKey, digests)
	if err != nil {
		s.failErr(w, "verify audit", err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) publicKey(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, audit.Publish(s.PublicKey))
}

// filterOf reads an audit filter from query parameters: session, project,
// agent, action (glob), effect (allow, deny, approve, denied), rule, code,
// since and until (RFC 3339).
func filterOf(q url.Values) (audit.Filter, error) {
	f := audit.Filter{Session: q.Get("session"), Project: q.Get("project"), Agent: q.Get("agent"),
		Action: q.Get("action"), Effect: q.Get("effect"), Rule: q.Get("rule"), Code: audit.Code(q.Get("code"))}
	switch f.Effect {
	case "", "allow", "deny", "approve", "denied":
	default:
		return f, fmt.Errorf("effect %q: allow, deny, approve or denied", f.Effect)
	}
	for _, t := range []struct {
		name string
		at   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, fmt.Errorf("%s %q is not an RFC 3339 time", t.name, v)
			}
			*t.at = at
		}
	}
	return f, nil
}

// ReplayView is the answer of GET /v1/admin/sessions/{id}/replay.
type ReplayView struct {
	Session SessionView   `json:"session"`
	Events  []audit.Event `json:"events"`
}

// replay returns a session's timeline.
func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	sess, err := s.Identity.Session(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failErr(w, "replay session", err)
		return
	}
	var recs []audit.Record
	var after int64
	for {
		page, err := s.Query.Query(r.Context(), audit.Filter{Session: sess.ID}, after, 1000)
		if err != nil {
			s.failErr(w, "replay session", err)
			return
		}
		if len(page) == 0 {
			break
		}
		recs = append(recs, page...)
		after = page[len(page)-1].Seq
	}
	v, err := s.effectiveView(r.Context(), sess)
	if err != nil {
		s.failErr(w, "replay session", err)
		return
	}
	events := audit.Replay(recs)
	if events == nil {
		events = []audit.Event{}
	}
	writeJSON(w, http.StatusOK, ReplayView{Session: v, Events: events})
}

// auditDigests returns the signed digests, in order.
func (s *Server) auditDigests(w http.ResponseWriter, r *http.Request) {
	digests, err := s.Digests.Digests(r.Context())
	if err != nil {
		s.failErr(w, "read digests", err)
		return
	}
	if digests == nil {
		digests = []audit.Digest{}
	}
	writeJSON(w, http.StatusOK, digests)
}

// ArchiveList is the answer of GET /v1/admin/audit/archive?prefix=P: the
// archive's keys under P (records/, digests/ or keys/).
type ArchiveList struct {
	Keys []string `json:"keys"`
}

func (s *Server) archiveList(w http.ResponseWriter, r *http.Request) {
	if s.Archive == nil {
		fail(w, http.StatusNotFound, "archive-off", "this server does not archive its audit trail")
		return
	}
	prefix := r.URL.Query().Get("prefix")
	switch prefix {
	case "records/", "digests/", "keys/":
	default:
		fail(w, http.StatusBadRequest, "bad-request", "prefix must be records/, digests/ or keys/")
		return
	}
	keys, err := s.Archive.List(r.Context(), prefix)
	if err != nil {
		s.failErr(w, "list the archive", err)
		return
	}
	writeJSON(w, http.StatusOK, ArchiveList{Keys: append([]string{}, keys...)})
}

// archiveObject answers an archive object's bytes as stored.
func (s *Server) archiveObject(w http.ResponseWriter, r *http.Request) {
	if s.Archive == nil {
		fail(w, http.StatusNotFound, "archive-off", "this server does not archive its audit trail")
		return
	}
	key := r.PathValue("key")
	rc, err := s.Archive.Open(r.Context(), key)
	if errors.Is(err, audit.ErrNotArchived) {
		fail(w, http.StatusNotFound, "not-found", "no archive object %q", key)
		return
	}
	if errors.Is(err, audit.ErrBadKey) {
		fail(w, http.StatusBadRequest, "bad-request", "%q is not an archive key", key)
		return
	}
	if err != nil {
		s.failErr(w, "read the archive", err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := io.Copy(w, rc); err != nil {
		s.Log.Warn("send archive object", "key", key, "err", err)
	}
}
