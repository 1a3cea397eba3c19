// Command notifier is the notifications function: the outbox table's
// stream, each message the api and llm functions put there sent to its
// Slack, Telegram and webhook channels, with their tokens from Secrets
// Manager; and, invoked by the approvals state machine once an approval
// is decided or expired, its Slack messages updated with the outcome.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/lambdas/notifier"
)

func main() { lambdas.Start(build) }

func build(ctx context.Context) (func(context.Context, json.RawMessage) (any, error), error) {
	env, err := lambdas.LoadEnv(ctx, awsconfig.EnvStage, awsconfig.EnvSecretsPrefix, awsconfig.EnvIdentityTable)
	if err != nil {
		return nil, err
	}
	n, err := notifier.New(env, &lambdas.Metrics{Stage: env.Config.Stage, Out: os.Stdout})
	if err != nil {
		return nil, err
	}
	return n.Invoke, nil
}
