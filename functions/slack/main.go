// Command slack is the Slack callback function: Slack's interactivity
// requests (clicks on an approval's buttons) behind API Gateway, checked
// against the app's signing secret, taken once across instances, and
// decided in the approvals of the identity table.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approvaltask"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/approvalstore"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/slackapp"
)

func main() { lambdas.Start(build) }

func build(ctx context.Context) (func(context.Context, *events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error), error) {
	env, err := lambdas.LoadEnv(ctx, awsconfig.EnvStage, awsconfig.EnvSecretsPrefix,
		awsconfig.EnvIdentityTable, awsconfig.EnvAuditTable)
	if err != nil {
		return nil, err
	}
	secrets, err := env.Secrets()
	if err != nil {
		return nil, err
	}
	db := dynamo.New(env.DynamoDB(), env.Tables())
	store := approvalstore.New(db)
	approvals := &approval.Service{Store: store, Audit: db.Audit(), Log: env.Log,
		// A decision answers the approval's waiting task (Step Functions).
		Decided: approvaltask.OnDecided(env.StepFunctions(), env.Log)}
	app := &slackapp.Interactivity{Approvals: approvals, Secrets: secrets, Replays: store, Log: env.Log}
	return lambdas.Buffered(app), nil
}
