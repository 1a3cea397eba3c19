// Command api is the API function: API Gateway's REST API in front of the
// handler `warden serve` runs (hooks, agent login, the admin API with IAM
// authorization, audit queries), on DynamoDB.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/cloud"
	"github.com/wardenhq/warden/shared/lambdas"
)

func main() { lambdas.Start(build) }

func build(ctx context.Context) (func(context.Context, *events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error), error) {
	app, err := cloud.APIFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	return lambdas.Buffered(app.Handler()), nil
}
