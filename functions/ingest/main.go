// Command ingest is the CloudTrail ingest function: each AWS call the
// agent runtime role's credentials made, delivered by an EventBridge rule,
// appended to the audit trail under the Warden session that made it.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/lambdas/ingest"
)

func main() {
	env, err := lambdas.LoadEnv(context.Background(), awsconfig.EnvStage, awsconfig.EnvIdentityTable, awsconfig.EnvAuditTable)
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(ingest.New(env).Handle)
}
