package approval

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

// Service runs the approvals. Store and Audit are required.
type Service struct {
	Store Store
	Audit audit.Sink
	// Opened, if not nil, is told each new approval, to post it where its
	// approvers are (Slack, the notification channels).
	Opened func(context.Context, Approval)
	// Decided, if not nil, is told each approval that left pending
	// (approved, denied, expired, cancelled), to update what Opened
	// posted.
	Decided func(context.Context, Approval)
	Now     func() time.Time
	Log     *slog.Logger

	mu      sync.Mutex
	waiters map[string][]chan struct{}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Request is a request the policy decided needs approval, with what the
// policy says of it (the package reads no policy itself: the Slack
// callback function, which only decides, links no policy engine).
type Request struct {
	Project, Agent, Session string
	// Requester is the person the session runs for, if it says (its
	// label "requester"): they may not approve it.
	Requester string
	// Kind is the request's kind (tool, git, aws...), for the audit.
	Kind             string
	Action, Resource string
	Args             json.RawMessage // as recorded, redacted
	// Rule, Reason and Command are the policy's decision; PolicyVersion
	// the policy's version; Groups the rule's approver groups.
	Rule, Reason, Command string
	PolicyVersion         string
	Groups                []Group
}

// Group is an approver group of the policy: who may decide, where the
// request is posted, how long a grant may hold and a request may wait.
type Group struct {
	Name      string
	Approvers []string // Slack users and user groups, Telegram users
	Channels  []string
	TTL       time.Duration
	Timeout   time.Duration
}

// Outcome is what Check found for a request.
type Outcome int

// Outcomes of Check.
const (
	// Opened: a new approval is pending, and was posted to its approvers.
	Opened Outcome = iota + 1
	// Joined: the request joined the pending approval of the same request.
	Joined
	// Granted: an approval lets the request through (and counts the use).
	Granted
	// Refused: the same request was denied, within the approval's timeout.
	Refused
)

// Check looks up the approval of the exact request r: it lets the request
// through if an approval grants it, tells it to wait if one is pending, and
// otherwise opens one.
func (s *Service) Check(ctx context.Context, r Request) (Approval, Outcome, error) {
	if len(r.Groups) == 0 {
		return Approval{}, 0, fmt.Errorf("approval: rule %q has no approver group", r.Rule)
	}
	now := s.now()
	key := Key(r.Project, r.Agent, r.Session, r.Action, r.Resource, r.Args, r.PolicyVersion)
	var (
		out     Approval
		outcome Outcome
		expired *Approval
	)
	err := s.Store.Latest(ctx, key, func(l *Approval) (*Approval, error) {
		expired = nil
		if l != nil {
			switch {
			case l.State == Pending && now.Before(l.Expires):
				l.Requests++
				out, outcome = *l, Joined
				return nil, nil
			case l.Usable(now):
				l.Uses++
				out, outcome = *l, Granted
				return nil, nil
			case l.State == Denied && now.Before(l.Decided.Add(l.Expires.Sub(l.Created))):
				out, outcome = *l, Refused
				return nil, nil
			case l.State == Pending: // past its time, not yet swept
				l.State = Expired
				e := *l
				expired = &e
			}
		}
		a := open(r, key, now)
		out, outcome = a, Opened
		return &a, nil
	})
	if err != nil {
		return Approval{}, 0, fmt.Errorf("approval of %s on %s: %w", r.Action, r.Resource, err)
	}
	if expired != nil {
		s.changed(ctx, *expired)
	}
	if outcome == Opened {
		s.record(ctx, out, audit.ApprovalRequested, "", "approval requested: "+out.Reason)
		if s.Opened != nil {
			s.Opened(ctx, out)
		}
	}
	return out, outcome, nil
}

// open is a new pending approval of r by its groups.
func open(r Request, key string, now time.Time) Approval {
	a := Approval{ID: NewID(), Key: key, Project: r.Project, Agent: r.Agent, Session: r.Session, Requester: r.Requester,
		Kind: r.Kind, Action: r.Action, Resource: r.Resource, Args: r.Args, Command: r.Command, Rule: r.Rule,
		Reason: r.Reason, PolicyVersion: r.PolicyVersion, State: Pending, Created: now, Requests: 1}
	var timeout time.Duration
	for _, g := range r.Groups {
		a.Groups = append(a.Groups, g.Name)
		for _, id := range g.Approvers {
			if !slices.Contains(a.Approvers, id) {
				a.Approvers = append(a.Approvers, id)
			}
		}
		for _, ch := range g.Channels {
			if !slices.Contains(a.Channels, ch) {
				a.Channels = append(a.Channels, ch)
			}
		}
		timeout = max(timeout, g.Timeout)
		a.MaxGrant = max(a.MaxGrant, g.TTL)
	}
	a.Expires = now.Add(timeout)
	return a
}

// Decision is a human's answer to an approval.
type Decision struct {
	Approve bool
	// For, if more than 0, approves every request with the same key until
	// then (at most the approval's MaxGrant); else one request, within
	// MaxGrant.
	For time.Duration
	// By is who decides: a Slack or Telegram user ID, or, with Admin, an
	// administrator's name. Groups are the user groups By belongs to.
	By     string
	Groups []string
	Admin  bool
	// Via says from where (the Slack channel, the admin's address).
	Via  string
	Note string
}

// Decide records a human's decision on the pending approval id. Only an
// approver of its groups (or an administrator) may decide, never the
// requester; an approval that is no longer pending (decided first by
// someone else, expired) is ErrDecided.
func (s *Service) Decide(ctx context.Context, id string, d Decision) (Approval, error) {
	if d.By == "" {
		return Approval{}, errf(id, fmt.Errorf("%w: no decider", ErrNotApprover))
	}
	now := s.now()
	a, err := s.Store.Update(ctx, id, func(a *Approval) error {
		switch {
		case a.State != Pending || !now.Before(a.Expires):
			return fmt.Errorf("%w (%s)", ErrDecided, describe(a, now))
		case d.By == a.Requester || slices.Contains(d.Groups, a.Requester) && a.Requester != "":
			return fmt.Errorf("%w: %s asked for it", ErrNotApprover, d.By)
		case !d.Admin && !slices.Contains(a.Approvers, d.By) && !slices.ContainsFunc(d.Groups, func(g string) bool { return slices.Contains(a.Approvers, g) }):
			return fmt.Errorf("%w: %s is not among %s", ErrNotApprover, d.By, strings.Join(a.Approvers, ", "))
		}
		a.State, a.Decided, a.DecidedBy, a.DecidedVia, a.Note = Denied, now, d.By, d.Via, d.Note
		if d.Admin {
			a.DecidedBy = "admin:" + d.By
		}
		if d.Approve {
			a.State = Approved
			grant := a.MaxGrant
			if d.For > 0 {
				grant, a.Reusable = min(d.For, a.MaxGrant), true
			}
			a.GrantUntil = now.Add(grant)
		}
		return nil
	})
	if err != nil {
		return Approval{}, errf(id, err)
	}
	code, what := audit.ApprovalDenied, "denied"
	if a.State == Approved {
		code, what = audit.ApprovalApproved, "approved"
		if a.Reusable {
			what += " until " + a.GrantUntil.Format(time.RFC3339)
		} else {
			what += " once"
		}
	}
	reason := what + " by " + a.DecidedBy
	if a.DecidedVia != "" {
		reason += " via " + a.DecidedVia
	}
	if a.Note != "" {
		reason += ": " + a.Note
	}
	s.record(ctx, a, code, a.DecidedBy, reason)
	s.changed(ctx, a)
	return a, nil
}

// Cancel withdraws a pending approval (an administrator's, or the
// session's end).
func (s *Service) Cancel(ctx context.Context, id, by, reason string) (Approval, error) {
	now := s.now()
	a, err := s.Store.Update(ctx, id, func(a *Approval) error {
		if a.State != Pending {
			return fmt.Errorf("%w (%s)", ErrDecided, describe(a, now))
		}
		a.State, a.Decided, a.DecidedBy, a.Note = Cancelled, now, by, reason
		return nil
	})
	if err != nil {
		return Approval{}, errf(id, err)
	}
	s.record(ctx, a, audit.ApprovalCancelled, by, "cancelled by "+by+": "+reason)
	s.changed(ctx, a)
	return a, nil
}

// Waiting stores the token of the task (AWS Step Functions) that waits
// for the approval's decision, and reports whether the approval is still
// pending; when it is not (decided before the task began), the caller
// answers the task at once with the approval as it is.
func (s *Service) Waiting(ctx context.Context, id, token string) (Approval, bool, error) {
	pending := false
	a, err := s.Store.Update(ctx, id, func(a *Approval) error {
		pending = a.State == Pending
		if pending {
			a.TaskToken = token
		}
		return nil
	})
	if err != nil {
		return Approval{}, false, errf(id, err)
	}
	return a, pending, nil
}

// Posted records a message that asked the approvers of approval id, to
// update once it is decided; it returns the approval as it is now, so
// that a caller who posted after the decision updates the message at
// once. The same message twice, or more than MaxPosts, is kept once.
func (s *Service) Posted(ctx context.Context, id string, p Post) (Approval, error) {
	a, err := s.Store.Update(ctx, id, func(a *Approval) error {
		if len(a.Posts) < MaxPosts && !slices.Contains(a.Posts, p) {
			a.Posts = append(a.Posts, p)
		}
		return nil
	})
	if err != nil {
		return Approval{}, errf(id, err)
	}
	return a, nil
}

// Expire expires the approval if it is still pending, whatever its time
// (the state machine that waited for it timed out, on AWS).
func (s *Service) Expire(ctx context.Context, id string) (Approval, error) {
	expired := false
	a, err := s.Store.Update(ctx, id, func(a *Approval) error {
		if expired = a.State == Pending; expired {
			a.State = Expired
		}
		return nil
	})
	if err != nil {
		return Approval{}, errf(id, err)
	}
	if expired {
		s.changed(ctx, a)
	}
	return a, nil
}

// ExpireDue expires the pending approvals whose time is up, and returns
// how many it expired. The local server calls it every second; a restart
// loses no timer, since the store holds each approval's time.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	now := s.now()
	due, err := s.Store.Due(ctx, now)
	if err != nil {
		return 0, fmt.Errorf("approvals due: %w", err)
	}
	n := 0
	for _, d := range due {
		a, err := s.Store.Update(ctx, d.ID, func(a *Approval) error {
			if a.State != Pending || now.Before(a.Expires) {
				return ErrDecided
			}
			a.State = Expired
			return nil
		})
		if err != nil {
			continue // decided meanwhile
		}
		n++
		s.changed(ctx, a)
	}
	return n, nil
}

// Run expires due approvals every interval until ctx ends.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.ExpireDue(ctx); err != nil && ctx.Err() == nil {
				s.log().Error("expire approvals", "err", err)
			}
		}
	}
}

// Wait returns the approval id once it is no longer pending, or as it is
// when ctx ends. A change this process makes wakes it at once; one made
// elsewhere (another function instance) is seen within poll.
func (s *Service) Wait(ctx context.Context, id string, poll time.Duration) (Approval, error) {
	for {
		wake := s.waiter(id)
		a, err := s.Store.Get(ctx, id)
		if err != nil || a.State != Pending {
			s.unwait(id, wake)
			return a, err
		}
		t := time.NewTimer(min(poll, max(time.Until(a.Expires), time.Millisecond)))
		select {
		case <-ctx.Done():
			t.Stop()
			s.unwait(id, wake)
			return a, nil
		case <-wake:
		case <-t.C:
			if !s.now().Before(a.Expires) {
				if _, err := s.ExpireDue(ctx); err != nil {
					s.log().Error("expire approvals", "err", err)
				}
			}
		}
		t.Stop()
		s.unwait(id, wake)
	}
}

func (s *Service) waiter(id string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiters == nil {
		s.waiters = map[string][]chan struct{}{}
	}
	c := make(chan struct{})
	s.waiters[id] = append(s.waiters[id], c)
	return c
}

func (s *Service) unwait(id string, c chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiters[id] = slices.DeleteFunc(s.waiters[id], func(w chan struct{}) bool { return w == c })
	if len(s.waiters[id]) == 0 {
		delete(s.waiters, id)
	}
}

// changed wakes the approval's waiters and tells Decided; an expiry is
// recorded here, whoever noticed it.
func (s *Service) changed(ctx context.Context, a Approval) {
	if a.State == Expired {
		s.record(ctx, a, audit.ApprovalExpired, "", fmt.Sprintf("expired undecided after %s", a.Expires.Sub(a.Created)))
	}
	s.mu.Lock()
	for _, c := range s.waiters[a.ID] {
		close(c)
	}
	delete(s.waiters, a.ID)
	s.mu.Unlock()
	if s.Decided != nil {
		s.Decided(ctx, a)
	}
}

func (s *Service) record(ctx context.Context, a Approval, code audit.Code, actor, reason string) {
	rec := audit.Record{ID: audit.NewID(), Time: s.now(), Code: code, Project: a.Project, Agent: a.Agent, Session: a.Session,
		Actor: actor, Kind: a.Kind, Action: a.Action, Resource: a.Resource, Args: a.Args, Ref: a.ID,
		Rule: a.Rule, Reason: reason, PolicyVersion: a.PolicyVersion}
	if _, err := s.Audit.Append(ctx, rec); err != nil {
		s.log().Error("record an approval", "err", err, "approval", a.ID, "code", code)
	}
}

// describe says where an approval stands, for errors and the agent.
func describe(a *Approval, now time.Time) string {
	switch {
	case a.State == Pending && !now.Before(a.Expires):
		return "expired"
	case a.State == Pending:
		return "pending"
	case a.DecidedBy != "":
		return string(a.State) + " by " + a.DecidedBy
	}
	return string(a.State)
}

// Describe says where the approval stands at now: "pending", "approved by
// slack:U012AB3CD", "expired"…
func (a Approval) Describe(now time.Time) string { return describe(&a, now) }
