package dynamo

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wardenhq/warden/shared/dynamo/dynamotest"

	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/budget/budgettest"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/identity/identitytest"
	"github.com/wardenhq/warden/shared/pricing"
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

// TestSettleOnAnotherInstance: a reservation made by one function
// instance is settled by another, which reads the hold from its item.
func TestSettleOnAnotherInstance(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	emu := newEmulator(t)
	one := emu.db(t)
	other := New(emu.client, one.tables)
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	k := budget.CounterKey{Budget: "daily", Scope: "web", Period: "day", Window: day}
	r := budget.Reservation{ID: "h1", Worst: budget.Amount{USD: pricing.USD(2), Tokens: 100}, Created: day,
		Charges: []budget.Charge{{Key: k, Cap: budget.Amount{USD: pricing.USD(10)}, Alerts: []int{50}}}}
	if err := one.Budgets().Reserve(ctx, r); err != nil {
		t.Fatal(err)
	}
	res, err := other.Budgets().Settle(ctx, "h1", budget.Amount{USD: pricing.USD(5), Tokens: 80})
	if err != nil || len(res) != 1 || res[0].Counter.Spent.USD != pricing.USD(5) || res[0].Counter.Held != (budget.Amount{}) ||
		len(res[0].Alerts) != 1 || res[0].Alerts[0] != 50 {
		t.Fatalf("Settle on another instance = %+v, %v", res, err)
	}
	if _, err := one.Budgets().Settle(ctx, "h1", budget.Amount{}); err != budget.ErrUnknownHold {
		t.Errorf("Settle again on the instance that reserved it: %v, want ErrUnknownHold", err)
	}
}
