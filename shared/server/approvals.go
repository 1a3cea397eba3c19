package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/hooks"
)

// MaxApprovalWait bounds how long GET /v1/approvals/{id}?wait= holds the
// request: as long as a hook may wait (under the hook's timeout and API
// Gateway's 29 s).
const MaxApprovalWait = hooks.MaxWait

// DecideRequest is the body of POST /v1/admin/approvals/{id}/approve and
// /deny. For ("1h") approves every identical request until then, within
// the approver groups' TTL; without it, one request.
type DecideRequest struct {
	For  string `json:"for,omitempty"`
	Note string `json:"note,omitempty"`
}

func (s *Server) approvalRoutes(mux, admin *http.ServeMux) {
	mux.HandleFunc("GET /v1/approvals/{id}", s.agentApproval)
	admin.HandleFunc("GET /v1/admin/approvals", s.listApprovals)
	admin.HandleFunc("GET /v1/admin/approvals/{id}", s.showApproval)
	admin.HandleFunc("POST /v1/admin/approvals/{id}/approve", s.decideApproval(true))
	admin.HandleFunc("POST /v1/admin/approvals/{id}/deny", s.decideApproval(false))
	admin.HandleFunc("POST /v1/admin/approvals/{id}/cancel", s.cancelApproval)
}

// approvalsOff answers when the server has no approval workflow.
func (s *Server) approvalsOff(w http.ResponseWriter) bool {
	if s.Approvals == nil {
		fail(w, http.StatusNotFound, "approvals_off", "this server has no approval workflow")
		return true
	}
	return false
}

func (s *Server) approvalErr(w http.ResponseWriter, op string, err error) {
	switch {
	case errors.Is(err, approval.ErrNotFound):
		fail(w, http.StatusNotFound, "not_found", "%s: no such approval", op)
	case errors.Is(err, approval.ErrDecided):
		fail(w, http.StatusConflict, "decided", "%v", err)
	case errors.Is(err, approval.ErrNotApprover):
		fail(w, http.StatusForbidden, "not_approver", "%v", err)
	default:
		s.failErr(w, op, err)
	}
}

func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request) {
	if s.approvalsOff(w) {
		return
	}
	f := approval.Filter{State: approval.State(r.URL.Query().Get("state"))}
	switch f.State {
	case "", approval.Pending, approval.Approved, approval.Denied, approval.Expired, approval.Cancelled:
	default:
		fail(w, http.StatusBadRequest, "bad_request", "state must be pending, approved, denied, expired or cancelled")
		return
	}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			fail(w, http.StatusBadRequest, "bad_request", "limit must be 1 to 1000")
			return
		}
		f.Limit = n
	}
	list, err := s.Approvals.Store.List(r.Context(), f)
	if err != nil {
		s.approvalErr(w, "list approvals", err)
		return
	}
	out := make([]approval.Approval, len(list))
	for i, a := range list {
		out[i] = shown(a)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) approvalID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !approval.ValidID(id) {
		fail(w, http.StatusBadRequest, "bad_request", "%q is not an approval ID (APR-…)", id)
		return "", false
	}
	return id, true
}

func (s *Server) showApproval(w http.ResponseWriter, r *http.Request) {
	id, ok := s.approvalID(w, r)
	if !ok || s.approvalsOff(w) {
		return
	}
	a, err := s.Approvals.Store.Get(r.Context(), id)
	if err != nil {
		s.approvalErr(w, "show approval "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, shown(a))
}

// decideApproval is an administrator's decision, from the command line or
// the dashboard: recorded as theirs, from their address.
func (s *Server) decideApproval(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.approvalID(w, r)
		if !ok || s.approvalsOff(w) {
			return
		}
		var req DecideRequest
		if !decode(w, r, &req) {
			return
		}
		d := approval.Decision{Approve: approve, By: actor(r), Admin: true, Via: clientAddr(r), Note: req.Note}
		if req.For != "" {
			if !approve {
				fail(w, http.StatusBadRequest, "bad_request", "for: only an approval holds for a while")
				return
			}
			dur, err := time.ParseDuration(req.For)
			if err != nil || dur <= 0 {
				fail(w, http.StatusBadRequest, "bad_request", "for: %q is not a duration such as 30m or 1h", req.For)
				return
			}
			d.For = dur
		}
		a, err := s.Approvals.Decide(r.Context(), id, d)
		if err != nil {
			s.approvalErr(w, "decide approval "+id, err)
			return
		}
		writeJSON(w, http.StatusOK, shown(a))
	}
}

func (s *Server) cancelApproval(w http.ResponseWriter, r *http.Request) {
	id, ok := s.approvalID(w, r)
	if !ok || s.approvalsOff(w) {
		return
	}
	reason, ok := readReason(w, r, "cancelling the approval", true)
	if !ok {
		return
	}
	a, err := s.Approvals.Cancel(r.Context(), id, actor(r), reason)
	if err != nil {
		s.approvalErr(w, "cancel approval "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, shown(a))
}

// shown is an approval as the admin API shows it: without its task token,
// which lets its holder answer the waiting task.
func shown(a approval.Approval) approval.Approval {
	a.TaskToken = ""
	return a
}

// ApprovalStatus is what an agent learns of its approval.
type ApprovalStatus struct {
	ID      string         `json:"id"`
	State   approval.State `json:"state"`
	Status  string         `json:"status"` // "pending", "approved by slack:U…", "expired"
	Expires time.Time      `json:"expires"`
}

// agentApproval answers an agent about one of its session's approvals,
// waiting (?wait=25s, at most MaxApprovalWait) until it is decided.
func (s *Server) agentApproval(w http.ResponseWriter, r *http.Request) {
	id, ok := s.approvalID(w, r)
	if !ok || s.approvalsOff(w) {
		return
	}
	sess, err := s.Identity.Authenticate(r.Context(), hooks.BearerToken(r))
	if err != nil {
		s.failErr(w, "approval "+id, err)
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			fail(w, http.StatusBadRequest, "bad_request", "wait: %q is not a duration such as 25s", v)
			return
		}
		wait = min(wait, MaxApprovalWait)
	}
	a, err := s.Approvals.Store.Get(r.Context(), id)
	if err == nil && a.Session != sess.ID {
		err = approval.ErrNotFound // another session's: not shown
	}
	if err == nil && wait > 0 && a.State == approval.Pending {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		a, err = s.Approvals.Wait(ctx, id, time.Second)
		cancel()
	}
	if err != nil {
		s.approvalErr(w, "approval "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, ApprovalStatus{ID: a.ID, State: a.State, Status: a.Describe(time.Now()), Expires: a.Expires})
}

// clientAddr is where a request came from (on AWS, the source address
// API Gateway saw).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
