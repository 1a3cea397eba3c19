package lambdas

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

// Start serves the handler build assembles from the function's
// environment, a func as lambda.Start takes it. build runs in Lambda's
// init phase; if it fails, its error is logged and the process ends
// there: Lambda records the init as failed (Runtime.ExitError), fails the
// invocation, and runs the init again for the next one, so that a setting
// fixed or a dependency back is picked up without a new deployment.
func Start[Req, Resp any](build func(context.Context) (func(context.Context, Req) (Resp, error), error)) {
	lambda.Start(mustBuild(build))
}

// StartNoResult is Start for a handler that answers nothing but an error.
func StartNoResult[Req any](build func(context.Context) (func(context.Context, Req) error, error)) {
	lambda.Start(mustBuild(build))
}

func mustBuild[H any](build func(context.Context) (H, error)) H {
	h, err := build(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "the function cannot start: %v\n", err)
		os.Exit(1)
	}
	return h
}
