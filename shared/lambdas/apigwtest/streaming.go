package apigwtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wardenhq/warden/shared/lambdas"
)

// Streaming stands in for API Gateway's REST API in front of a
// response-streaming Lambda proxy integration, as the llm function is
// deployed. A request becomes the event API Gateway sends: a body whose
// Content-Type is one of BinaryMediaTypes base64-encoded, any other passed
// as text (bytes that are not UTF-8 do not survive the event's JSON). The
// limits are API Gateway's 10 MiB body and Lambda's invocation payload
// (the event's JSON, lambdas.MaxInvokePayload), answered 413 as they
// answer. The function's answer is written as it streams.
type Streaming struct {
	Function         func(context.Context, *events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error)
	BinaryMediaTypes []string
	// Stage, if set, is the first segment of every path, as in the API's
	// URL (https://<id>.execute-api.<region>.amazonaws.com/<stage>); the
	// function sees the path without it.
	Stage string

	largest atomic.Int64
}

// API Gateway's request body limit.
const maxBody = 10 << 20

// Largest is the largest request body received so far, in bytes.
func (s *Streaming) Largest() int64 { return s.largest.Load() }

func (s *Streaming) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if s.Stage != "" {
		rest, ok := strings.CutPrefix(path, "/"+s.Stage+"/")
		if !ok {
			// API Gateway's answer outside its stages.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"Forbidden"}`)
			return
		}
		path = "/" + rest
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, `{"message":"bad request"}`, http.StatusBadRequest)
		return
	}
	size := int64(len(body))
	if size > maxBody {
		// Read to the end (bounded), so that the client sees the answer.
		n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 256<<20))
		size += n
	}
	for old := s.largest.Load(); size > old && !s.largest.CompareAndSwap(old, size); old = s.largest.Load() {
	}
	if size > maxBody {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		io.WriteString(w, "HTTP content length exceeded 10485760 bytes.")
		return
	}
	ev := &events.APIGatewayProxyRequest{
		Resource: path, Path: path, HTTPMethod: r.Method,
		Headers: map[string]string{}, MultiValueHeaders: map[string][]string(r.Header.Clone()),
		RequestContext: events.APIGatewayProxyRequestContext{DomainName: r.Host, Stage: s.Stage, Path: r.URL.Path,
			HTTPMethod: r.Method, RequestID: "test-request",
			Identity: events.APIGatewayRequestIdentity{SourceIP: strings.Split(r.RemoteAddr, ":")[0]}},
	}
	for k, vs := range r.Header {
		ev.Headers[k] = vs[len(vs)-1]
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.MultiValueQueryStringParameters, ev.QueryStringParameters = q, map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = vs[len(vs)-1]
		}
	}
	if s.binary(r.Header.Get("Content-Type")) {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	} else {
		ev.Body = string(body)
	}
	// The event travels as JSON, within Lambda's payload limit.
	payload, err := json.Marshal(ev)
	if err != nil {
		http.Error(w, `{"message": "Internal server error"}`, http.StatusInternalServerError)
		return
	}
	if len(payload) > lambdas.MaxInvokePayload {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", "BadRequestException")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		io.WriteString(w, `{"message": "Request Too Long"}`)
		return
	}
	ev = &events.APIGatewayProxyRequest{}
	if err := json.Unmarshal(payload, ev); err != nil {
		http.Error(w, `{"message": "Internal server error"}`, http.StatusInternalServerError)
		return
	}
	resp, err := s.Function(r.Context(), ev)
	if err != nil {
		http.Error(w, `{"message": "Internal server error"}`, http.StatusBadGateway)
		return
	}
	if c, ok := resp.Body.(io.Closer); ok {
		defer c.Close()
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		w.Header()[http.CanonicalHeaderKey(k)] = vs
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	w.WriteHeader(resp.StatusCode)
	if resp.Body == nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			http.NewResponseController(w).Flush()
		}
		if err != nil {
			return
		}
	}
}

// binary reports whether API Gateway passes a body of this Content-Type
// as bytes: its media type is one of BinaryMediaTypes, which may end in
// /* or be */*.
func (s *Streaming) binary(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	for _, b := range s.BinaryMediaTypes {
		if b == mt || b == "*/*" || strings.HasSuffix(b, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(b, "*")) {
			return true
		}
	}
	return false
}
