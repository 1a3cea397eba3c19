package approvalstore

import (
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approval/approvaltest"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	client := dynamotest.Client(t)
	approvaltest.Run(t, func(t *testing.T) approval.Store { return New(dynamotest.DB(t, client)) })
}

// TestFirstTime: a request is new once, whichever instance asks.
func TestFirstTime(t *testing.T) {
	t.Parallel()
	db := dynamotest.DB(t, dynamotest.Client(t))
	one, other := New(db), New(db)
	for i, want := range []bool{true, false} {
		s := []*Store{one, other}[i]
		if got, err := s.FirstTime(t.Context(), "v0=abc", time.Minute); err != nil || got != want {
			t.Errorf("ask %d: %v, %v; want %v", i+1, got, err, want)
		}
	}
	if got, err := other.FirstTime(t.Context(), "v0=abd", time.Minute); err != nil || !got {
		t.Errorf("another request: %v, %v", got, err)
	}
}
