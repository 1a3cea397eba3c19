package approval_test

import (
	"testing"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approval/approvaltest"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	approvaltest.Run(t, func(*testing.T) approval.Store { return &approval.MemoryStore{} })
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for range 100 {
		if id := approval.NewID(); !approval.ValidID(id) {
			t.Fatalf("NewID %q is not valid", id)
		}
	}
	for _, bad := range []string{"", "APR-", "APR-abcdefghijklmnop", "APR-ABCDEFGHIJKLMNO1", "XYZ-ABCDEFGHIJKLMNOP", "APR-ABCDEFGHIJKLMNOPQ"} {
		if approval.ValidID(bad) {
			t.Errorf("ValidID(%q)", bad)
		}
	}
}
