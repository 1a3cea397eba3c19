// Command slack is the Slack callback function: Slack's interactivity
// requests (clicks on an approval's buttons) behind API Gateway, checked
// against the app's signing secret, taken once across instances, and
// decided in the approvals of the identity table.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/approvalstore"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/slackapp"
)

func main() {
	env, err := lambdas.LoadEnv(context.Background(), awsconfig.EnvStage, awsconfig.EnvSecretsPrefix,
		awsconfig.EnvIdentityTable, awsconfig.EnvAuditTable)
	if err != nil {
		log.Fatal(err)
	}
	secrets, err := env.Secrets()
	if err != nil {
		log.Fatal(err)
	}
	db := dynamo.New(env.DynamoDB(), env.Tables())
	store := approvalstore.New(db)
	app := &slackapp.Interactivity{Approvals: &approval.Service{Store: store, Audit: db.Audit(), Log: env.Log},
		Secrets: secrets, Replays: store, Log: env.Log}
	lambda.Start(lambdas.Buffered(app))
}
