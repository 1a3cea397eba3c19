// Command llm is the LLM gateway function: the model APIs (Anthropic
// Messages, OpenAI Responses and Chat Completions, Bedrock) behind API
// Gateway with response streaming, so that server-sent events reach the
// agent one by one.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wardenhq/warden/shared/cloud"
	"github.com/wardenhq/warden/shared/lambdas"
)

func main() {
	app, err := cloud.LLMFromEnv(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(lambdas.Streaming(app.Handler()))
}
