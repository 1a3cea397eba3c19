package dynamo

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wardenhq/warden/shared/dynamo/dynamotest"

	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/budget/budgettest"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/identity/identitytest"
)

// emulator makes tables on one minidyn emulator.
type emulator struct {
	client *dynamodb.Client
	tables atomic.Int64
}

func newEmulator(t testing.TB) *emulator { return &emulator{client: dynamotest.Client(t)} }

// db returns storage over fresh tables.
func (e *emulator) db(t testing.TB) *DB {
	n := e.tables.Add(1)
	tables := Tables{Identity: fmt.Sprintf("identity-%d", n), Audit: fmt.Sprintf("audit-%d", n), Budget: fmt.Sprintf("budget-%d", n)}
	if err := CreateTables(t.Context(), e.client, tables); err != nil {
		t.Fatal(err)
	}
	return New(e.client, tables)
}

func TestIdentityStore(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	identitytest.Run(t, func(t testing.TB) identity.Store { return emu.db(t).Identity() })
}

func TestLedger(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	budgettest.Run(t, func(t *testing.T) budget.Ledger { return emu.db(t).Budgets() })
}

func TestGetAgentAndProject(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := newEmulator(t).db(t)
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
