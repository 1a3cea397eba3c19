package lambdas

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// API Gateway's REST API (Lambda proxy integration) in front of the same
// http.Handler that `warden serve` runs: Buffered for the API function,
// whose answers are small JSON documents, and Streaming for the LLM
// function, whose server-sent events must reach the agent one by one
// (response transfer mode STREAM).

type requestContextKey struct{}

// RequestContext returns API Gateway's context of the request being
// served, if it came through API Gateway.
func RequestContext(r *http.Request) (events.APIGatewayProxyRequestContext, bool) {
	rc, ok := r.Context().Value(requestContextKey{}).(events.APIGatewayProxyRequestContext)
	return rc, ok
}

// IAMCaller is the caller API Gateway authenticated with IAM (SigV4) for a
// route with AWS_IAM authorization: its ARN. The admin routes have it, and
// server.Server.AdminPrincipal uses it.
func IAMCaller(r *http.Request) (string, bool) {
	rc, ok := RequestContext(r)
	if !ok || rc.Identity.UserArn == "" {
		return "", false
	}
	return rc.Identity.UserArn, true
}

// maxRequestBody is API Gateway's payload limit; a larger body cannot have
// come through it.
const maxRequestBody = 10 << 20

// MaxInvokePayload is Lambda's request payload limit for a synchronous
// invocation (API Gateway's included): the event's JSON, in bytes.
const MaxInvokePayload = 6_291_456

// MaxBinaryBody is the largest binary request body that reaches a
// function through API Gateway: base64-encoded in the event (4/3 of it),
// beside the headers and the request's context (64 KiB allowed for them;
// API Gateway's headers are bounded at 10 KiB).
const MaxBinaryBody = (MaxInvokePayload - 64<<10) / 4 * 3

// httpRequest turns an API Gateway proxy event into the request the
// handler serves.
func httpRequest(ctx context.Context, ev *events.APIGatewayProxyRequest) (*http.Request, error) {
	var body io.Reader = strings.NewReader(ev.Body)
	size := len(ev.Body)
	if ev.IsBase64Encoded {
		body = base64.NewDecoder(base64.StdEncoding, body)
		size = base64.StdEncoding.DecodedLen(size)
	}
	if size > maxRequestBody {
		return nil, fmt.Errorf("request body of %d bytes is over API Gateway's %d", size, maxRequestBody)
	}
	u := &url.URL{Scheme: "https", Host: ev.RequestContext.DomainName, Path: ev.Path}
	q := url.Values{}
	for k, vs := range ev.MultiValueQueryStringParameters {
		q[k] = append(q[k], vs...)
	}
	for k, v := range ev.QueryStringParameters {
		if _, ok := q[k]; !ok {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	ctx = context.WithValue(ctx, requestContextKey{}, ev.RequestContext)
	r, err := http.NewRequestWithContext(ctx, ev.HTTPMethod, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range ev.MultiValueHeaders {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	for k, v := range ev.Headers {
		if r.Header.Get(k) == "" {
			r.Header.Set(k, v)
		}
	}
	r.Host = u.Host
	r.RemoteAddr = ev.RequestContext.Identity.SourceIP
	if size > 0 {
		r.ContentLength = -1 // unknown until read: base64 and chunking hide it
	}
	return r, nil
}

// Buffered serves API Gateway proxy events with h, whose whole answer is
// returned at once. A body that is not UTF-8 text goes base64-encoded.
func Buffered(h http.Handler) func(context.Context, *events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return func(ctx context.Context, ev *events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		r, err := httpRequest(ctx, ev)
		if err != nil {
			return events.APIGatewayProxyResponse{StatusCode: http.StatusRequestEntityTooLarge,
				Headers: map[string]string{"Content-Type": "application/json"},
				Body:    `{"error":"request body too large","code":"bad_request"}`}, nil
		}
		w := &bufferedWriter{header: http.Header{}}
		h.ServeHTTP(w, r)
		if w.status == 0 {
			w.status = http.StatusOK
		}
		resp := events.APIGatewayProxyResponse{StatusCode: w.status, MultiValueHeaders: w.header}
		if data := w.body.Bytes(); utf8.Valid(data) {
			resp.Body = string(data)
		} else {
			resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(data), true
		}
		return resp, nil
	}
}

type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedWriter) Header() http.Header { return w.header }

func (w *bufferedWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *bufferedWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Streaming serves API Gateway proxy events with h through a response
// stream: the status and headers go out when h writes them, and every
// Write after that reaches the client as it happens (a Flush has nothing
// left to push). The handler runs on until it returns, even after the
// status is sent.
func Streaming(h http.Handler) func(context.Context, *events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
	return func(ctx context.Context, ev *events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
		r, err := httpRequest(ctx, ev)
		if err != nil {
			return &events.APIGatewayProxyStreamingResponse{StatusCode: http.StatusRequestEntityTooLarge,
				Headers: map[string]string{"Content-Type": "application/json"},
				Body:    strings.NewReader(`{"error":"request body too large","code":"bad_request"}`)}, nil
		}
		pr, pw := io.Pipe()
		ready := make(chan streamHead, 1)
		w := &streamWriter{header: http.Header{}, body: pw, ready: ready}
		go func() {
			defer func() {
				if p := recover(); p != nil {
					w.WriteHeader(http.StatusInternalServerError)
					pw.CloseWithError(fmt.Errorf("handler panicked: %v", p))
					return
				}
				w.WriteHeader(http.StatusOK) // a handler that wrote nothing answers 200
				pw.Close()
			}()
			h.ServeHTTP(w, r)
		}()
		head := <-ready
		resp := &events.APIGatewayProxyStreamingResponse{StatusCode: head.status, Body: pr}
		for k, vs := range head.header {
			if k == "Set-Cookie" {
				resp.Cookies = vs
				continue
			}
			if resp.MultiValueHeaders == nil {
				resp.MultiValueHeaders = map[string][]string{}
			}
			resp.MultiValueHeaders[k] = vs
		}
		return resp, nil
	}
}

type streamHead struct {
	status int
	header http.Header
}

type streamWriter struct {
	header http.Header
	body   io.Writer
	once   sync.Once
	ready  chan<- streamHead
}

func (w *streamWriter) Header() http.Header { return w.header }

func (w *streamWriter) WriteHeader(code int) {
	w.once.Do(func() { w.ready <- streamHead{status: code, header: w.header.Clone()} })
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush implements http.Flusher: every Write is already on its way.
func (w *streamWriter) Flush() {}
