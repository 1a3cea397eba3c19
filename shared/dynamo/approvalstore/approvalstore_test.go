package approvalstore

import (
	"testing"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approval/approvaltest"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	client := dynamotest.Client(t)
	approvaltest.Run(t, func(t *testing.T) approval.Store { return New(dynamotest.DB(t, client)) })
}
