package identitystore

import (
	"testing"

	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/identity/identitytest"
)

func TestIdentityStore(t *testing.T) {
	t.Parallel()
	client := dynamotest.Client(t)
	identitytest.Run(t, func(t testing.TB) identity.Store { return New(dynamotest.DB(t, client)) })
}

func TestGetAgentAndProject(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := New(dynamotest.DB(t, dynamotest.Client(t)))
	if _, _, err := db.GetAgentAndProject(ctx, "web", "claude"); err != identity.ErrNotFound {
		t.Errorf("neither exists: %v", err)
	}
	if err := db.PutAgent(ctx, identity.Agent{Project: "web", Name: "claude", Killed: true, KillReason: "loop"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.GetAgentAndProject(ctx, "web", "claude"); err != identity.ErrNotFound {
		t.Errorf("no project: %v", err)
	}
	if err := db.CreateProject(ctx, identity.Project{Name: "web", Frozen: true, FrozenBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	a, p, err := db.GetAgentAndProject(ctx, "web", "claude")
	if err != nil || !a.Killed || a.KillReason != "loop" || p.Name != "web" || !p.Frozen || p.FrozenBy != "alice" {
		t.Errorf("GetAgentAndProject = %+v, %+v, %v", a, p, err)
	}
}
