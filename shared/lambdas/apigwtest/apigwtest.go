// Package apigwtest is a stand-in for API Gateway's REST API in front of a
// Lambda proxy integration, for tests: it turns HTTP requests into the
// events API Gateway sends, checks IAM (SigV4) authorization on the routes
// that have it as API Gateway would, and writes the function's answer
// back.
package apigwtest

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/sigv4test"
)

// Function is a Lambda handler of proxy events with a buffered answer.
type Function func(context.Context, *events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// StandIn serves requests with Function.
type StandIn struct {
	Function Function
	// IAM routes are paths under these prefixes: a request there must be
	// signed by Caller's credentials, and reaches the function with
	// Caller's ARN as its identity.
	IAM    []string
	Caller Caller
}

// Caller is the IAM principal the stand-in knows.
type Caller struct {
	ARN         string
	Credentials sigv4test.Credentials
}

func (s *StandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		http.Error(w, `{"message":"bad request"}`, http.StatusBadRequest)
		return
	}
	ev := &events.APIGatewayProxyRequest{
		HTTPMethod: r.Method, Path: r.URL.Path, Body: string(body),
		MultiValueHeaders: map[string][]string(r.Header.Clone()),
		RequestContext: events.APIGatewayProxyRequestContext{DomainName: r.Host, Stage: "test",
			Identity: events.APIGatewayRequestIdentity{SourceIP: strings.Split(r.RemoteAddr, ":")[0]}},
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.MultiValueQueryStringParameters = q
	}
	for _, p := range s.IAM {
		if strings.HasPrefix(r.URL.Path, p) {
			// API Gateway's answer to an unsigned or badly signed request.
			if err := sigv4test.Verify(r, body, s.Caller.Credentials); err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `{"message":"The request signature we calculated does not match the signature you provided."}`)
				return
			}
			ev.RequestContext.Identity.UserArn = s.Caller.ARN
			ev.RequestContext.Identity.AccessKey = s.Caller.Credentials.AccessKey
		}
	}
	resp, err := s.Function(r.Context(), ev)
	if err != nil {
		http.Error(w, `{"message":"Internal server error"}`, http.StatusBadGateway)
		return
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.StatusCode)
	if resp.IsBase64Encoded {
		data, _ := base64.StdEncoding.DecodeString(resp.Body)
		w.Write(data)
		return
	}
	io.WriteString(w, resp.Body)
}
