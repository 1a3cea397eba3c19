// Command approvals is the approvals state machine's function: its wait
// task stores the task token with the approval (or answers at once an
// approval decided before), its expire task expires an approval no one
// decided in time.
package main

import (
	"context"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approvaltask"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/approvalstore"
	"github.com/wardenhq/warden/shared/lambdas"
)

func main() { lambdas.StartNoResult(build) }

func build(ctx context.Context) (func(context.Context, approvaltask.Event) error, error) {
	env, err := lambdas.LoadEnv(ctx, awsconfig.EnvStage, awsconfig.EnvIdentityTable, awsconfig.EnvAuditTable)
	if err != nil {
		return nil, err
	}
	db := dynamo.New(env.DynamoDB(), env.Tables())
	h := &approvaltask.Handler{Approvals: &approval.Service{Store: approvalstore.New(db), Audit: db.Audit(), Log: env.Log},
		Tasks: env.StepFunctions(), Log: env.Log}
	return h.Handle, nil
}
