package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approval/approvaltest"
)

func TestApprovalConformance(t *testing.T) {
	t.Parallel()
	approvaltest.Run(t, func(t *testing.T) approval.Store { return openTest(t).Approvals() })
}

// TestApprovalSurvivesRestart: a pending approval and its timer survive a
// restart: after it, the approval is still pending and is decided, and one
// whose time passed while the server was down expires at the first sweep.
func TestApprovalSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s, clock, _ := approvaltest.Setup(t, db.Approvals())
	r := approvaltest.Push(t)
	a, _, err := s.Check(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	other := approvaltest.Push(t)
	other.Session = "s2"
	b, _, err := s.Check(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path)
	s2, _, _ := approvaltest.Setup(t, db.Approvals())
	s2.Now = clock.Now
	if got, err := s2.Store.Get(ctx, a.ID); err != nil || got.State != approval.Pending {
		t.Fatalf("after the restart: %+v, %v; want pending", got, err)
	}
	if got, err := s2.Decide(ctx, a.ID, approval.Decision{Approve: true, By: approvaltest.Lead}); err != nil || got.State != approval.Approved {
		t.Fatalf("Decide after the restart: %+v, %v", got, err)
	}
	if _, o, err := s2.Check(ctx, r); err != nil || o != approval.Granted {
		t.Errorf("the request after the restart: %v, %v; want granted", o, err)
	}
	clock.Add(2 * time.Hour) // b's hour passed
	if n, err := s2.ExpireDue(ctx); err != nil || n != 1 {
		t.Errorf("ExpireDue = %d, %v; want b expired", n, err)
	}
	if got, _ := s2.Store.Get(ctx, b.ID); got.State != approval.Expired {
		t.Errorf("b is %s", got.State)
	}
}
