// Command llm is the LLM gateway function: the model APIs (Anthropic
// Messages, OpenAI Responses and Chat Completions, Bedrock) behind API
// Gateway with response streaming, so that server-sent events reach the
// agent one by one.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/cloud"
	"github.com/wardenhq/warden/shared/lambdas"
)

func main() { lambdas.Start(build) }

func build(ctx context.Context) (func(context.Context, *events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error), error) {
	app, err := cloud.LLMFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	return lambdas.Streaming(app.Handler()), nil
}
