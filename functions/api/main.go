// Command api is the API function: API Gateway's REST API in front of the
// handler `warden serve` runs (hooks, agent login, the admin API with IAM
// authorization, audit queries), on DynamoDB.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wardenhq/warden/shared/cloud"
	"github.com/wardenhq/warden/shared/lambdas"
)

func main() {
	app, err := cloud.APIFromEnv(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(lambdas.Buffered(app.Handler()))
}
