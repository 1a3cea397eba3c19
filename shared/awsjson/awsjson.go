// Package awsjson makes calls of AWS's JSON protocols (awsJson1_0,
// awsJson1_1) as single SigV4-signed POSTs, for the few calls the Lambda
// functions make to services whose SDK clients would take too much of
// their 20 MB (Secrets Manager's GetSecretValue, Step Functions'
// StartExecution and SendTask*). Each caller checks, in its tests, that it
// sends what the SDK's client sends.
package awsjson

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Client calls one service in Region with Credentials.
type Client struct {
	Region      string
	Credentials aws.CredentialsProvider
	// Service is the signing name ("secretsmanager", "states"); Host the
	// endpoint's first label ("secretsmanager", "states").
	Service, Host string
	// Endpoint, if set, replaces https://HOST.REGION.amazonaws.com.
	Endpoint string
	// Version is the protocol's version: "1.0" or "1.1".
	Version string
	HTTP    *http.Client
}

// Answer is what the service answered.
type Answer struct {
	Status int
	// ErrorType is the X-Amzn-Errortype header, if any.
	ErrorType string
	Body      []byte
}

// Call posts body to target (e.g. "secretsmanager.GetSecretValue") and
// reads at most max bytes of the answer; more is an error. An error with
// a zero Status is the request's (no answer: worth another try); with
// one, the answer's reading.
func (c *Client) Call(ctx context.Context, target string, body []byte, max int64) (Answer, error) {
	endpoint := cmp.Or(strings.TrimRight(c.Endpoint, "/"), "https://"+c.Host+"."+c.Region+".amazonaws.com")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-"+c.Version)
	req.Header.Set("X-Amz-Target", target)
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return Answer{}, fmt.Errorf("credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), c.Service, c.Region, time.Now()); err != nil {
		return Answer{}, fmt.Errorf("sign: %w", err)
	}
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err == nil && int64(len(data)) > max {
		err = fmt.Errorf("the answer is over %d bytes", max)
	}
	return Answer{Status: resp.StatusCode, ErrorType: resp.Header.Get("X-Amzn-Errortype"), Body: data}, err
}

// ParseError reads an error answer of the JSON protocol: its code (the
// X-Amzn-Errortype header, else the body's __type, as ErrorCode gives it)
// and its message (the body's message, or Message); either may be empty.
func ParseError(errType string, body []byte) (code, message string) {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
		Upper   string `json:"Message"`
	}
	_ = json.Unmarshal(body, &e)
	return ErrorCode(cmp.Or(errType, e.Type)), cmp.Or(e.Message, e.Upper)
}

// ErrorCode is an error type without its namespace ("…#Code") or extra
// (":…"), as the SDK reads it.
func ErrorCode(t string) string {
	if i := strings.LastIndexByte(t, '#'); i >= 0 {
		t = t[i+1:]
	}
	if i := strings.IndexByte(t, ':'); i >= 0 {
		t = t[:i]
	}
	return t
}
