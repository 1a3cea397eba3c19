// Command ingest is the CloudTrail ingest function: each AWS call the
// agent runtime role's credentials made, delivered by an EventBridge rule,
// appended to the audit trail under the Warden session that made it.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/lambdas/ingest"
)

func main() { lambdas.StartNoResult(build) }

func build(ctx context.Context) (func(context.Context, events.CloudWatchEvent) error, error) {
	env, err := lambdas.LoadEnv(ctx, awsconfig.EnvStage, awsconfig.EnvIdentityTable, awsconfig.EnvAuditTable)
	if err != nil {
		return nil, err
	}
	return ingest.New(env).Handle, nil
}
