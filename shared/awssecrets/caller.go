package awssecrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/wardenhq/warden/shared/awsjson"
)

// Caller is an API that makes GetSecretValue as one signed HTTP POST of
// Secrets Manager's JSON protocol (awsJson1_1), without the SDK's client:
// the api and llm functions read a few secrets, and the client is about
// 0.4 MB of each binary, which must stay within 20 MB. It answers as the
// client does: the value, ResourceNotFoundException for a missing secret,
// Secrets Manager's other errors as smithy API errors (code and message),
// an unreadable answer as a smithy DeserializationError. Network errors,
// throttling and 5xx answers are tried again twice, after 100 and 200 ms.
type Caller struct {
	Region      string
	Credentials aws.CredentialsProvider
	// Endpoint, if set, replaces https://secretsmanager.REGION.amazonaws.com
	// (an emulator, AWS_ENDPOINT_URL_SECRETS_MANAGER).
	Endpoint string
	HTTP     *http.Client
}

var _ API = (*Caller)(nil)

// maxAnswer bounds an answer: a secret holds at most 64 KB.
const maxAnswer = 256 << 10

const attempts = 3

// GetSecretValue implements API for in's SecretId; the options are not used.
func (c *Caller) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	body, err := json.Marshal(map[string]string{"SecretId": aws.ToString(in.SecretId)})
	if err != nil {
		return nil, err
	}
	var out *secretsmanager.GetSecretValueOutput
	for attempt := 1; ; attempt++ {
		var retry bool
		out, retry, err = c.call(ctx, body)
		if !retry || attempt == attempts || ctx.Err() != nil {
			return out, err
		}
		t := time.NewTimer(time.Duration(attempt) * 100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (c *Caller) call(ctx context.Context, body []byte) (*secretsmanager.GetSecretValueOutput, bool, error) {
	client := &awsjson.Client{Region: c.Region, Credentials: c.Credentials, Service: "secretsmanager", Host: "secretsmanager",
		Endpoint: c.Endpoint, Version: "1.1", HTTP: c.HTTP}
	ans, err := client.Call(ctx, "secretsmanager.GetSecretValue", body, maxAnswer)
	if err != nil && ans.Status == 0 {
		var ne net.Error
		return nil, errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF), err
	}
	if err != nil {
		return nil, false, &smithy.DeserializationError{Err: err}
	}
	return parseAnswer(ans.Status, ans.ErrorType, ans.Body)
}

// parseAnswer reads an answer to GetSecretValue: its output, or its error
// and whether another try may pass.
func parseAnswer(status int, errType string, data []byte) (*secretsmanager.GetSecretValueOutput, bool, error) {
	if status == http.StatusOK {
		var v struct {
			ARN, Name, VersionId string
			SecretString         *string
			SecretBinary         []byte
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, false, &smithy.DeserializationError{Err: err}
		}
		return &secretsmanager.GetSecretValueOutput{ARN: &v.ARN, Name: &v.Name, VersionId: &v.VersionId,
			SecretString: v.SecretString, SecretBinary: v.SecretBinary}, false, nil
	}
	code, msg := awsjson.ParseError(errType, data)
	retry := status >= 500 || code == "ThrottlingException"
	if code == "" {
		return nil, retry, &smithy.GenericAPIError{Code: fmt.Sprintf("HTTP%d", status), Message: http.StatusText(status)}
	}
	if code == "ResourceNotFoundException" {
		return nil, false, &types.ResourceNotFoundException{Message: &msg}
	}
	return nil, retry, &smithy.GenericAPIError{Code: code, Message: msg}
}
