// Command notifier is the notifications function: the outbox table's
// stream, each message the api and llm functions put there sent to its
// Slack, Telegram and webhook channels, with their tokens from Secrets
// Manager; and, invoked by the approvals state machine once an approval
// is decided or expired, its Slack messages updated with the outcome.
package main

import (
	"context"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/lambdas/notifier"
)

func main() {
	env, err := lambdas.LoadEnv(context.Background(), awsconfig.EnvStage, awsconfig.EnvSecretsPrefix, awsconfig.EnvIdentityTable)
	if err != nil {
		log.Fatal(err)
	}
	n, err := notifier.New(env, &lambdas.Metrics{Stage: env.Config.Stage, Out: os.Stdout})
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(n.Invoke)
}
