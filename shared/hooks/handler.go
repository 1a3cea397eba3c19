package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/pipeline"
)

// maxRecordedResponse bounds how much of a tool's response the outcome
// record keeps.
const maxRecordedResponse = 8 << 10

// Handler serves the hook endpoints. Claude Code calls them as http hooks;
// `warden hook` calls them for command hooks (Codex).
type Handler struct {
	Pipeline *pipeline.Pipeline
	// Approvals, if not nil, lets PreToolUse wait for a human (?wait=25s):
	// a call that waits on an approval is held until it is decided, and
	// decided again then.
	Approvals Waiter
	Log       *slog.Logger
}

// Waiter waits for an approval to be decided (approval.Service).
type Waiter interface {
	Wait(ctx context.Context, id string, poll time.Duration) (approval.Approval, error)
}

// MaxWait bounds how long PreToolUse holds a call for an approval: within
// the client's 30 s hook timeout.
const MaxWait = 25 * time.Second

// BearerToken returns the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// read reads and decodes the body, answering 400 itself when it is bad.
func (h *Handler) read(w http.ResponseWriter, r *http.Request, event string) (*Input, bool) {
	token := BearerToken(r)
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxInputBytes+1))
	var in *Input
	if err == nil {
		in, err = Decode(body)
	}
	if err == nil && in.HookEventName != event {
		err = bad("this endpoint takes %s, got %s", event, in.HookEventName)
	}
	if err == nil {
		// A tool input of the wrong shape is bad input; a command line
		// that does not parse is not (its request fails closed).
		if _, _, rerr := in.Request(); errors.Is(rerr, ErrBadInput) {
			err = rerr
		}
	}
	if err != nil {
		msg := err.Error()
		if !errors.Is(err, ErrBadInput) {
			msg = "could not read the request body"
		}
		ref := &pipeline.Refusal{Status: http.StatusBadRequest, Message: msg}
		call := pipeline.Call{Token: token}
		if in != nil {
			call.ClientSession, call.Ref, call.Request.Action = in.SessionID, in.ToolUseID, "tool:"+in.ToolName
		}
		h.Pipeline.Refuse(r.Context(), call, ref)
		out := Deny("Warden refused the hook call: " + msg)
		out.Error = msg
		writeJSON(w, http.StatusBadRequest, out)
		return nil, false
	}
	return in, true
}

// PreToolUse decides a tool call and answers with the hook decision.
// A policy denial is a 200 answer with permissionDecision "deny"; a
// refused credential is 401 or 403, and a broken dependency 503, each with
// a deny decision in the body so that every client blocks the tool. A call
// still waiting on an approval is denied too, or, with ?pending=defer
// (Claude Code's -p runs), deferred: the run ends, and resumed once the
// approval is decided, the same call asks again.
func (h *Handler) PreToolUse(w http.ResponseWriter, r *http.Request) {
	in, ok := h.read(w, r, PreToolUse)
	if !ok {
		return
	}
	req, args, _ := in.Request()
	call := pipeline.Call{Token: BearerToken(r), Request: req, ClientSession: in.SessionID, Ref: in.ToolUseID, Args: args}
	v := h.Pipeline.Decide(r.Context(), call)
	if v.Refusal != nil && v.Refusal.Approval != "" && h.Approvals != nil {
		if wait := requestedWait(r); wait > 0 {
			if msg, again := h.waitApproval(r.Context(), v.Refusal.Approval, wait); again {
				v = h.Pipeline.Decide(r.Context(), call)
			} else if msg != "" {
				v.Refusal = &pipeline.Refusal{Status: v.Refusal.Status, Message: msg}
			}
		}
	}
	switch {
	case v.Allowed:
		writeJSON(w, http.StatusOK, Allow("Warden: "+v.Decision.Reason))
	case v.Decided:
		if v.Refusal.Approval != "" {
			// For `warden hook`, which waits for the approval and asks again.
			w.Header().Set(ApprovalHeader, v.Refusal.Approval)
			if r.URL.Query().Get("pending") == "defer" {
				writeJSON(w, http.StatusOK, Defer("Warden: "+v.Refusal.Message+"; resume the session once it is decided"))
				return
			}
		}
		writeJSON(w, http.StatusOK, Deny("Warden: "+v.Refusal.Message))
	default:
		out := Deny("Warden: " + v.Refusal.Message)
		out.Error = v.Refusal.Message
		writeJSON(w, v.Refusal.Status, out)
	}
}

// PostToolUse records the outcome and duration of a tool call, linked to
// its decision by tool_use_id.
func (h *Handler) PostToolUse(w http.ResponseWriter, r *http.Request) {
	in, ok := h.read(w, r, PostToolUse)
	if !ok {
		return
	}
	sess, err := h.Pipeline.Auth.Authenticate(r.Context(), BearerToken(r))
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, Output{Error: "unknown, malformed, expired or revoked Warden token"})
		return
	}
	req, _, _ := in.Request()
	rec := audit.Record{
		ClientSession: in.SessionID, Ref: in.ToolUseID, Kind: "tool", Action: req.Action,
		Resource: h.Pipeline.Redactor.String(req.Resource), Status: outcomeStatus(in.ToolResponse),
	}
	if in.DurationMS != nil {
		rec.DurationMS = *in.DurationMS
	}
	if len(in.ToolResponse) > 0 {
		rec.Args = responseRecord(h.Pipeline.Redactor, in.ToolResponse)
	}
	if err := h.Pipeline.Outcome(r.Context(), sess, rec); err != nil {
		h.log().Error("record tool outcome", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, Output{Error: "the audit trail is unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// outcomeStatus reads how a tool call ended from its response.
func outcomeStatus(resp json.RawMessage) string {
	var r struct {
		Interrupted bool `json:"interrupted"`
		IsError     bool `json:"is_error"`
		ExitCode    *int `json:"exit_code"`
	}
	if json.Unmarshal(resp, &r) != nil {
		return "completed"
	}
	switch {
	case r.Interrupted:
		return "interrupted"
	case r.IsError || (r.ExitCode != nil && *r.ExitCode != 0):
		return "error"
	}
	return "completed"
}

// responseRecord keeps a redacted, bounded copy of a tool's response.
func responseRecord(rd *audit.Redactor, resp json.RawMessage) json.RawMessage {
	var v any
	if err := json.Unmarshal(resp, &v); err != nil {
		return nil
	}
	out := rd.JSON(map[string]any{"response": v})
	if len(out) > maxRecordedResponse {
		s := string(out[:maxRecordedResponse])
		out = rd.JSON(map[string]any{"response_truncated": fmt.Sprintf("%s…", s)})
	}
	return out
}

// requestedWait is the ?wait= of a PreToolUse call, at most MaxWait; 0
// when absent or unreadable.
func requestedWait(r *http.Request) time.Duration {
	d, err := time.ParseDuration(r.URL.Query().Get("wait"))
	if err != nil || d <= 0 {
		return 0
	}
	return min(d, MaxWait)
}

// waitApproval holds the call until the approval is decided or wait is
// over: again when it was approved (the call is decided anew, and the
// approval lets it through); else what to tell the agent ("" while still
// pending).
func (h *Handler) waitApproval(ctx context.Context, id string, wait time.Duration) (msg string, again bool) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	a, err := h.Approvals.Wait(ctx, id, time.Second)
	switch {
	case err != nil:
		return "", false
	case a.State == approval.Approved:
		return "", true
	case a.State == approval.Pending:
		return "", false
	}
	return "approval " + a.ID + " " + a.Describe(time.Now()), false
}
