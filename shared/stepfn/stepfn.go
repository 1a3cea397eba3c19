// Package stepfn makes the AWS Step Functions calls of Warden's approval
// workflow on AWS: StartExecution (an approval's state machine, named by
// the approval, so that starting it twice starts it once) and
// SendTaskSuccess / SendTaskFailure (a human's decision handed to the
// task that waits on it). Each is one SigV4-signed POST of Step
// Functions' JSON protocol (awsJson1_0, by package awsjson), without the
// SDK's client, which would add to functions that must stay within 20 MB;
// the tests check that the SDK's client and this one send the same
// requests.
package stepfn

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wardenhq/warden/shared/awsjson"
)

// Client calls Step Functions in Region with Credentials.
type Client struct {
	Region      string
	Credentials aws.CredentialsProvider
	// Endpoint, if set, replaces https://states.REGION.amazonaws.com.
	Endpoint string
	HTTP     *http.Client
}

// ErrTaskEnded is returned by SendTaskSuccess and SendTaskFailure when the
// task no longer waits (decided before, timed out, its execution over): a
// second click on a decided approval.
var ErrTaskEnded = errors.New("step functions: the task no longer waits for an answer")

// Error is an error Step Functions answered with.
type Error struct {
	Code, Message string
	Status        int
}

func (e *Error) Error() string {
	return fmt.Sprintf("step functions: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// maxAnswer bounds an answer read.
const maxAnswer = 64 << 10

// StartExecution starts stateMachine with input as the execution name.
// Starting it again with the same name and input is not an error (Step
// Functions answers with the execution it started first).
func (c *Client) StartExecution(ctx context.Context, stateMachine, name string, input any) (executionARN string, err error) {
	in, err := json.Marshal(input)
	if err != nil {
		return "", err
	}
	var out struct{ ExecutionArn string }
	err = c.call(ctx, "StartExecution", map[string]string{"stateMachineArn": stateMachine, "name": name, "input": string(in)}, &out)
	return out.ExecutionArn, err
}

// SendTaskSuccess answers the task waiting with token.
func (c *Client) SendTaskSuccess(ctx context.Context, token string, output any) error {
	out, err := json.Marshal(output)
	if err != nil {
		return err
	}
	return c.ended(c.call(ctx, "SendTaskSuccess", map[string]string{"taskToken": token, "output": string(out)}, nil))
}

// SendTaskFailure fails the task waiting with token.
func (c *Client) SendTaskFailure(ctx context.Context, token, code, cause string) error {
	return c.ended(c.call(ctx, "SendTaskFailure", map[string]string{"taskToken": token, "error": code, "cause": cause}, nil))
}

// ended turns the answers for a task that no longer waits into
// ErrTaskEnded.
func (c *Client) ended(err error) error {
	var e *Error
	if errors.As(err, &e) && (e.Code == "TaskTimedOut" || e.Code == "TaskDoesNotExist" || e.Code == "InvalidToken") {
		return fmt.Errorf("%w: %s", ErrTaskEnded, e.Message)
	}
	return err
}

func (c *Client) call(ctx context.Context, op string, in any, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	client := &awsjson.Client{Region: c.Region, Credentials: c.Credentials, Service: "states", Host: "states",
		Endpoint: c.Endpoint, Version: "1.0", HTTP: c.HTTP}
	ans, err := client.Call(ctx, "AWSStepFunctions."+op, body, maxAnswer)
	if err != nil {
		return fmt.Errorf("step functions %s: %w", op, err)
	}
	if ans.Status != http.StatusOK {
		return ParseError(ans.Status, ans.ErrorType, ans.Body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(ans.Body, out); err != nil {
		return fmt.Errorf("step functions %s: the answer could not be read: %w", op, err)
	}
	return nil
}

// ParseError reads an error answer: its code (without namespace) and
// message.
func ParseError(status int, errType string, data []byte) *Error {
	code, msg := awsjson.ParseError(errType, data)
	return &Error{Code: cmp.Or(code, fmt.Sprintf("HTTP%d", status)), Message: msg, Status: status}
}
