package stepfn_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/wardenhq/warden/shared/stepfn"
	"github.com/wardenhq/warden/shared/stepfn/stepfntest"
)

const machine = "arn:aws:states:eu-central-1:123456789012:stateMachine:Warden-dev-Approvals"

type start struct {
	Approval       string `json:"approval"`
	TimeoutSeconds int    `json:"timeout_seconds"`
}

type decided struct {
	State string `json:"state"`
	By    string `json:"by"`
}

// calls is what a client does to the stand-in in the tests: start an
// approval's execution (again: the same; with another input: refused),
// answer its task, answer it again (refused: the task has ended), fail a
// second one's task. ended reports whether err is the client's "the task
// no longer waits".
type calls struct {
	start       func(name string, input any) error
	success     func(token string, output any) error
	failure     func(token, code, cause string) error
	ended       func(err error) bool
	alreadyUsed func(err error) bool
}

func run(t *testing.T, srv *stepfntest.Server, c calls) {
	t.Helper()
	if err := c.start("APR-AAAAAAAAAAAAAAAA", start{"APR-AAAAAAAAAAAAAAAA", 3600}); err != nil {
		t.Fatal(err)
	}
	if err := c.start("APR-AAAAAAAAAAAAAAAA", start{"APR-AAAAAAAAAAAAAAAA", 3600}); err != nil {
		t.Errorf("starting the same execution again: %v", err)
	}
	if err := c.start("APR-AAAAAAAAAAAAAAAA", start{"APR-AAAAAAAAAAAAAAAA", 60}); !c.alreadyUsed(err) {
		t.Errorf("another input under the same name: %v", err)
	}
	token := srv.Token("APR-AAAAAAAAAAAAAAAA")
	if err := c.success(token, decided{"approved", "U012AB3CD"}); err != nil {
		t.Fatal(err)
	}
	if err := c.success(token, decided{"denied", "U0555MMMM"}); !c.ended(err) {
		t.Errorf("a second answer: %v, want the task ended", err)
	}
	if err := c.failure(srv.Token("APR-BBBBBBBBBBBBBBBB"), "Cancelled", "cancelled by admin:alice"); err != nil {
		t.Fatal(err)
	}
}

// TestSameRequestsAsTheSDK: the stand-in takes the SDK's client's
// requests (it checks their signature and shape), and this package's
// client sends the same ones and reads the same answers.
func TestSameRequestsAsTheSDK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(stepfntest.AccessKey, stepfntest.SecretKey, "")

	viaSDK := stepfntest.New(t)
	sdk := sfn.New(sfn.Options{Region: stepfntest.Region, Credentials: creds, BaseEndpoint: aws.String(viaSDK.URL), RetryMaxAttempts: 1})
	json := func(v any) *string { return aws.String(fmt.Sprint(mustJSON(t, v))) }
	run(t, viaSDK, calls{
		start: func(name string, input any) error {
			_, err := sdk.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String(name), Input: json(input)})
			return err
		},
		success: func(token string, output any) error {
			_, err := sdk.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: json(output)})
			return err
		},
		failure: func(token, code, cause string) error {
			_, err := sdk.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(token), Error: aws.String(code), Cause: aws.String(cause)})
			return err
		},
		ended:       func(err error) bool { var e *types.TaskTimedOut; return errors.As(err, &e) },
		alreadyUsed: func(err error) bool { var e *types.ExecutionAlreadyExists; return errors.As(err, &e) },
	})

	viaUs := stepfntest.New(t)
	ours := &stepfn.Client{Region: stepfntest.Region, Credentials: creds, Endpoint: viaUs.URL}
	run(t, viaUs, calls{
		start: func(name string, input any) error {
			arn, err := ours.StartExecution(ctx, machine, name, input)
			if err == nil && arn != "arn:aws:states:eu-central-1:123456789012:execution:approvals:"+name {
				t.Errorf("execution ARN %q", arn)
			}
			return err
		},
		success: func(token string, output any) error { return ours.SendTaskSuccess(ctx, token, output) },
		failure: func(token, code, cause string) error { return ours.SendTaskFailure(ctx, token, code, cause) },
		ended:   func(err error) bool { return errors.Is(err, stepfn.ErrTaskEnded) },
		alreadyUsed: func(err error) bool {
			var e *stepfn.Error
			return errors.As(err, &e) && e.Code == "ExecutionAlreadyExists"
		},
	})

	if a, b := viaSDK.Starts(), viaUs.Starts(); !slices.Equal(a, b) || len(a) != 3 {
		t.Errorf("starts:\nSDK  %+v\nours %+v", a, b)
	}
	if a, b := viaSDK.Answers(), viaUs.Answers(); !slices.Equal(a, b) || len(a) != 2 {
		t.Errorf("answers:\nSDK  %+v\nours %+v", a, b)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
