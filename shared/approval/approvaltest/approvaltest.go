// Package approvaltest is the conformance suite of approval.Store, run
// through approval.Service: every store must keep the lifecycle's rules
// atomic.
package approvaltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/internal/suite"
	"github.com/wardenhq/warden/shared/pipeline"
)

// Policy is the suite's policy: pushes to main need a lead (Lead, or a
// member of the user group Group), within an hour; a grant holds 15 minutes.
const Policy = `version: 1
rules:
  - {id: main-push, effect: approve, action: "git:push", resource: "github.com/acme/web:refs/heads/main"}
approvers:
  leads:
    slack: [U012AB3CD, S0123ABCD]
    rules: [main-push]
    ttl: 15m
    timeout: 1h
    notify: [ops]
notifications:
  ops: {type: webhook, url: "https://hooks.example.com/warden"}
`

// Slack IDs of the suite: Lead and the members of Group approve, Other
// does not, Member is in Group, Requester runs the agent.
const (
	Lead      = "U012AB3CD"
	Group     = "S0123ABCD"
	Other     = "U098ZY7XW"
	Member    = "U0555MMMM"
	Requester = "U0777RRRR"
)

// T0 is when the suite's clock starts.
var T0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock on.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// Trail keeps the audit records.
type Trail struct {
	mu   sync.Mutex
	Recs []audit.Record
}

func (t *Trail) Append(_ context.Context, r audit.Record) (audit.Record, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Recs = append(t.Recs, r)
	return r, nil
}

// Codes are the records' codes for an approval, in order.
func (t *Trail) Codes(id string) []audit.Code {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []audit.Code
	for _, r := range t.Recs {
		if r.Ref == id {
			out = append(out, r.Code)
		}
	}
	return out
}

// Setup is a Service over store, with the suite's clock and trail.
func Setup(t *testing.T, store approval.Store) (*approval.Service, *Clock, *Trail) {
	clock, trail := &Clock{t: T0}, &Trail{}
	return &approval.Service{Store: store, Audit: trail, Now: clock.Now}, clock, trail
}

// Push is the suite's request: a push to main by session s1.
func Push(t *testing.T) approval.Request {
	t.Helper()
	pol, err := policy.Load("p.yaml", []byte(Policy))
	if err != nil {
		t.Fatal(err)
	}
	req := &policy.Request{Principal: policy.Principal{Project: "web", Agent: "claude", Session: "s1"},
		Action: "git:push", Resource: "github.com/acme/web:refs/heads/main"}
	d := pol.Evaluate(req)
	if d.Effect != policy.Approve {
		t.Fatalf("the suite's policy decided %v", d)
	}
	return approval.Request{Project: "web", Agent: "claude", Session: "s1", Requester: Requester, Kind: "git", Action: req.Action,
		Resource: req.Resource, Args: []byte(`{"command":"git push origin main"}`), Rule: d.Rule, Reason: d.Reason,
		PolicyVersion: pol.Version, Groups: pipeline.ApproverGroups(pol, d.Rule)}
}

// Run checks store.
func Run(t *testing.T, newStore func(t *testing.T) approval.Store) {
	suite.Run(t, newStore, []suite.Case[approval.Store]{
		{Name: "OpenJoinGrantOnce", Run: testOpenJoinGrant},
		{Name: "BoundToTheRequest", Run: testBinding},
		{Name: "WhoMayDecide", Run: testDeciders},
		{Name: "ApprovedForAWhile", Run: testForAWhile},
		{Name: "DeniedIsHeld", Run: testDenied},
		{Name: "Expires", Run: testExpires},
		{Name: "ConcurrentDecisionsOneWins", Run: testConcurrentDecisions},
		{Name: "ConcurrentRequestsOpenOne", Run: testConcurrentRequests},
		{Name: "TaskWaitsForTheDecision", Run: testTaskWaits},
		{Name: "PostsKept", Run: testPosts},
	})
}

var ctx = context.Background()

func check(t *testing.T, s *approval.Service, r approval.Request, want approval.Outcome) approval.Approval {
	t.Helper()
	a, got, err := s.Check(ctx, r)
	if err != nil || got != want {
		t.Fatalf("Check = %v, %v; want outcome %v (approval %+v)", got, err, want, a)
	}
	return a
}

func decide(t *testing.T, s *approval.Service, id string, d approval.Decision) approval.Approval {
	t.Helper()
	a, err := s.Decide(ctx, id, d)
	if err != nil {
		t.Fatalf("Decide(%+v): %v", d, err)
	}
	return a
}

func testOpenJoinGrant(t *testing.T, store approval.Store) {
	s, clock, trail := Setup(t, store)
	r := Push(t)
	a := check(t, s, r, approval.Opened)
	if !approval.ValidID(a.ID) || a.State != approval.Pending || !a.Expires.Equal(T0.Add(time.Hour)) || a.MaxGrant != 15*time.Minute ||
		len(a.Approvers) != 2 || a.Channels[0] != "ops" || a.Groups[0] != "leads" {
		t.Fatalf("opened %+v", a)
	}
	if j := check(t, s, r, approval.Joined); j.ID != a.ID || j.Requests != 2 {
		t.Errorf("joined %+v, want %s with 2 requests", j, a.ID)
	}
	clock.Add(time.Minute)
	got := decide(t, s, a.ID, approval.Decision{Approve: true, By: Lead, Via: "#ops"})
	if got.State != approval.Approved || got.DecidedBy != Lead || !got.GrantUntil.Equal(T0.Add(16*time.Minute)) || got.Reusable {
		t.Errorf("approved %+v", got)
	}
	if _, err := s.Decide(ctx, a.ID, approval.Decision{Approve: false, By: Lead}); !errors.Is(err, approval.ErrDecided) {
		t.Errorf("a second decision: %v, want ErrDecided", err)
	}
	if g := check(t, s, r, approval.Granted); g.ID != a.ID || g.Uses != 1 {
		t.Errorf("granted %+v", g)
	}
	// Single use: the next request asks again.
	if n := check(t, s, r, approval.Opened); n.ID == a.ID {
		t.Error("a single-use approval let a second request through")
	}
	if got, want := trail.Codes(a.ID), []audit.Code{audit.ApprovalRequested, audit.ApprovalApproved}; !equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
	if l, err := store.Get(ctx, a.ID); err != nil || l.Uses != 1 || l.Requests != 2 {
		t.Errorf("stored %+v, %v", l, err)
	}
}

func testBinding(t *testing.T, store approval.Store) {
	s, _, _ := Setup(t, store)
	r := Push(t)
	a := check(t, s, r, approval.Opened)
	decide(t, s, a.ID, approval.Decision{Approve: true, For: time.Hour, By: Lead})
	for name, change := range map[string]func(*approval.Request){
		"other arguments": func(r *approval.Request) { r.Args = []byte(`{"command":"git push -f origin main"}`) },
		"other session":   func(r *approval.Request) { r.Session = "s2" },
		"other resource":  func(r *approval.Request) { r.Resource = "github.com/acme/api:refs/heads/main" },
		"other policy":    func(r *approval.Request) { r.PolicyVersion = "v2" },
	} {
		other := Push(t)
		change(&other)
		if _, got, err := s.Check(ctx, other); err != nil || got != approval.Opened {
			t.Errorf("%s: %v, %v; want a new approval, not the grant", name, got, err)
		}
	}
	check(t, s, r, approval.Granted)
}

func testDeciders(t *testing.T, store approval.Store) {
	s, _, trail := Setup(t, store)
	r := Push(t)
	a := check(t, s, r, approval.Opened)
	for _, d := range []approval.Decision{
		{Approve: true, By: Other},                              // not an approver
		{Approve: true, By: Requester, Groups: []string{Group}}, // the requester, though in the group
		{Approve: true}, // nobody
	} {
		if _, err := s.Decide(ctx, a.ID, d); !errors.Is(err, approval.ErrNotApprover) {
			t.Errorf("Decide(%+v) = %v, want ErrNotApprover", d, err)
		}
	}
	if got := decide(t, s, a.ID, approval.Decision{Approve: false, By: Member, Groups: []string{Group}, Note: "not today"}); got.State != approval.Denied {
		t.Errorf("a member of S9 denied: %+v", got)
	}
	b := check(t, s, func() approval.Request { r := Push(t); r.Session = "s3"; return r }(), approval.Opened)
	if got := decide(t, s, b.ID, approval.Decision{Approve: true, By: "alice", Admin: true, Via: "203.0.113.24"}); got.DecidedBy != "admin:alice" {
		t.Errorf("an administrator approved: %+v", got)
	}
	if got := trail.Codes(a.ID); !equal(got, []audit.Code{audit.ApprovalRequested, audit.ApprovalDenied}) {
		t.Errorf("audit of the refused decisions %v: only the request and the one decision", got)
	}
}

func testForAWhile(t *testing.T, store approval.Store) {
	s, clock, _ := Setup(t, store)
	r := Push(t)
	a := check(t, s, r, approval.Opened)
	// Asked for an hour, given the group's 15 minutes.
	got := decide(t, s, a.ID, approval.Decision{Approve: true, For: time.Hour, By: Lead})
	if !got.Reusable || !got.GrantUntil.Equal(T0.Add(15*time.Minute)) {
		t.Fatalf("approved for a while: %+v", got)
	}
	for range 3 {
		check(t, s, r, approval.Granted)
		clock.Add(4 * time.Minute)
	}
	clock.Add(4 * time.Minute) // 16 minutes on
	check(t, s, r, approval.Opened)
}

func testDenied(t *testing.T, store approval.Store) {
	s, clock, _ := Setup(t, store)
	r := Push(t)
	a := check(t, s, r, approval.Opened)
	decide(t, s, a.ID, approval.Decision{Approve: false, By: Lead})
	if d := check(t, s, r, approval.Refused); d.ID != a.ID || d.State != approval.Denied {
		t.Errorf("refused %+v", d)
	}
	clock.Add(time.Hour + time.Second)
	check(t, s, r, approval.Opened)
}

func testExpires(t *testing.T, store approval.Store) {
	s, clock, trail := Setup(t, store)
	r := Push(t)
	a := check(t, s, r, approval.Opened)
	clock.Add(59 * time.Minute)
	if n, err := s.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("ExpireDue before its time = %d, %v", n, err)
	}
	clock.Add(time.Minute)
	if n, err := s.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
	}
	if got, err := s.Wait(ctx, a.ID, time.Millisecond); err != nil || got.State != approval.Expired || got.Describe(clock.Now()) != "expired" {
		t.Errorf("Wait = %+v, %v; want expired", got, err)
	}
	if _, err := s.Decide(ctx, a.ID, approval.Decision{Approve: true, By: Lead}); !errors.Is(err, approval.ErrDecided) {
		t.Errorf("deciding an expired approval: %v", err)
	}
	if n := check(t, s, r, approval.Opened); n.ID == a.ID {
		t.Error("an expired approval was joined")
	}
	if got := trail.Codes(a.ID); !equal(got, []audit.Code{audit.ApprovalRequested, audit.ApprovalExpired}) {
		t.Errorf("audit %v", got)
	}
}

// testConcurrentDecisions: ten approvers click at once; one decides.
func testConcurrentDecisions(t *testing.T, store approval.Store) {
	s, _, trail := Setup(t, store)
	a := check(t, s, Push(t), approval.Opened)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for i := range 10 {
		wg.Go(func() {
			_, err := s.Decide(ctx, a.ID, approval.Decision{Approve: i%2 == 0, By: Lead})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, approval.ErrDecided):
				lost++
			default:
				t.Errorf("Decide: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 || lost != 9 || len(trail.Codes(a.ID)) != 2 {
		t.Errorf("%d decisions won, %d lost, audit %v; want 1 and 9", won, lost, trail.Codes(a.ID))
	}
}

// testConcurrentRequests: twenty identical requests at once open one
// approval, which the others join.
func testConcurrentRequests(t *testing.T, store approval.Store) {
	s, _, _ := Setup(t, store)
	r := Push(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]int{}
	outcomes := map[approval.Outcome]int{}
	for range 20 {
		wg.Go(func() {
			a, o, err := s.Check(ctx, r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("Check: %v", err)
			}
			ids[a.ID]++
			outcomes[o]++
		})
	}
	wg.Wait()
	if len(ids) != 1 || outcomes[approval.Opened] != 1 || outcomes[approval.Joined] != 19 {
		t.Errorf("approvals %v, outcomes %v; want one opened, 19 joined", ids, outcomes)
	}
	list, err := store.List(ctx, approval.Filter{State: approval.Pending})
	if err != nil || len(list) != 1 || list[0].Requests != 20 {
		t.Errorf("List = %+v, %v", list, err)
	}
}

// testTaskWaits: the task that waits for a decision (AWS) leaves its
// token with a pending approval, which a decision then carries; a task
// that comes after the decision is told so; Expire ends a pending one
// whatever its time, and leaves a decided one alone.
func testTaskWaits(t *testing.T, store approval.Store) {
	s, _, trail := Setup(t, store)
	var told []string
	s.Decided = func(_ context.Context, a approval.Approval) { told = append(told, string(a.State)+" "+a.TaskToken) }
	a := check(t, s, Push(t), approval.Opened)
	if got, pending, err := s.Waiting(ctx, a.ID, "token-1"); err != nil || !pending || got.TaskToken != "token-1" {
		t.Fatalf("Waiting = %+v, %v, %v", got, pending, err)
	}
	decide(t, s, a.ID, approval.Decision{Approve: true, By: Lead})
	if got, pending, err := s.Waiting(ctx, a.ID, "token-2"); err != nil || pending || got.State != approval.Approved || got.TaskToken != "token-1" {
		t.Errorf("a task after the decision: %+v, %v, %v", got, pending, err)
	}
	if got, err := s.Expire(ctx, a.ID); err != nil || got.State != approval.Approved {
		t.Errorf("Expire of a decided approval: %+v, %v", got, err)
	}
	other := Push(t)
	other.Session = "s2"
	b := check(t, s, other, approval.Opened)
	if got, err := s.Expire(ctx, b.ID); err != nil || got.State != approval.Expired {
		t.Errorf("Expire of a pending approval: %+v, %v", got, err)
	}
	if want := []string{"approved token-1", "expired "}; !slices.Equal(told, want) {
		t.Errorf("Decided was told %q, want %q", told, want)
	}
	if got := trail.Codes(b.ID); !equal(got, []audit.Code{audit.ApprovalRequested, audit.ApprovalExpired}) {
		t.Errorf("audit %v", got)
	}
}

// testPosts: the messages that asked the approvers are kept with the
// approval, each once, through its decision; one recorded after the
// decision finds the approval decided (and with it the posts before).
func testPosts(t *testing.T, store approval.Store) {
	s, _, _ := Setup(t, store)
	a := check(t, s, Push(t), approval.Opened)
	first := approval.Post{Name: "ops-slack", Secret: "slack-bot-token", Channel: "C0123ABCDE", TS: "1772366400.000100"}
	for range 2 {
		if got, err := s.Posted(ctx, a.ID, first); err != nil || got.State != approval.Pending || !slices.Equal(got.Posts, []approval.Post{first}) {
			t.Fatalf("Posted = %+v, %v", got, err)
		}
	}
	decide(t, s, a.ID, approval.Decision{Approve: true, By: Lead})
	late := first
	late.Channel, late.TS = "C0999LATE1", "1772366401.000200"
	got, err := s.Posted(ctx, a.ID, late)
	if err != nil || got.State != approval.Approved || !slices.Equal(got.Posts, []approval.Post{first, late}) {
		t.Errorf("Posted after the decision = %+v, %v", got, err)
	}
	if _, err := s.Posted(ctx, "APR-AAAAAAAAAAAAAAAA", first); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("Posted to no approval: %v", err)
	}
	for i := range approval.MaxPosts + 5 {
		p := first
		p.TS = fmt.Sprintf("1772366500.%06d", i)
		if _, err := s.Posted(ctx, a.ID, p); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Store.Get(ctx, a.ID); len(got.Posts) != approval.MaxPosts {
		t.Errorf("%d posts kept, want at most %d", len(got.Posts), approval.MaxPosts)
	}
}

func equal(a, b []audit.Code) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
