// Command archiver is the audit archiver function: the audit table's
// stream sequenced into the hash chain, digested and archived in signed,
// compressed batches in the Object Lock bucket.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/lambdas"
)

func main() { lambdas.Start(build) }

func build(ctx context.Context) (func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error), error) {
	env, err := lambdas.LoadEnv(ctx, awsconfig.EnvAuditTable, awsconfig.EnvArchiveBucket, awsconfig.EnvSecretsPrefix)
	if err != nil {
		return nil, err
	}
	// The lease names the instance by its log stream, unique per
	// execution environment.
	a, err := lambdas.NewArchiver(ctx, env, os.Getenv("AWS_LAMBDA_LOG_STREAM_NAME"))
	if err != nil {
		return nil, err
	}
	return a.Handle, nil
}
