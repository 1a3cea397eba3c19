package llm

// Amazon Bedrock upstreams (api: bedrock), reached two ways:
//
//   - An agent speaking the Anthropic Messages API (/v1/messages) whose
//     model is routed to a Bedrock upstream: forwardBedrock translates the
//     request into InvokeModel (/model/{modelId}/invoke) or
//     InvokeModelWithResponseStream (…/invoke-with-response-stream), and
//     the answer back into Anthropic JSON or SSE. count_tokens becomes
//     Bedrock's CountTokens.
//   - Claude Code's Bedrock mode (CLAUDE_CODE_USE_BEDROCK=1,
//     ANTHROPIC_BEDROCK_BASE_URL=<warden>/bedrock), which speaks Bedrock
//     itself: registerBedrock's routes decide and pass its calls through,
//     the answer's bytes unchanged.
//
// The model is not renamed: the routed model must be a Bedrock model ID
// (anthropic.claude-sonnet-4-5-20250929-v1:0), a cross-region inference
// profile (eu.anthropic.…, global.anthropic.…) or a profile ARN, as the
// price table's bedrock section names them. Calls are signed with SigV4
// (service bedrock) with credentials only Warden holds: Gateway.AWS, or
// what Gateway.LoadAWS loads (for `warden serve`, the standard AWS chain
// of the process: environment, shared config and credentials files, SSO,
// web identity, container and instance roles). An upstream with a key (key_env) sends it instead as a
// Bedrock API key (Authorization: Bearer). The region is read from the
// endpoint's host (bedrock-runtime.<region>.amazonaws.com), else taken
// from the AWS configuration (AWS_REGION).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/wardenhq/warden/shared/llm/meter"
	"github.com/wardenhq/warden/shared/pipeline"
)

// Bedrock's wire constants.
const (
	bedrockVersion  = "bedrock-2023-05-31" // the body's anthropic_version
	eventStreamType = "application/vnd.amazon.eventstream"
	opStream        = "invoke-with-response-stream"
	opInvoke        = "invoke"
	opCountTokens   = "count-tokens"
	// maxControlBytes bounds a control-plane answer (a page of inference
	// profiles is a few tens of KB).
	maxControlBytes = 4 << 20
	// maxModelIDBytes bounds a model ID in a path: an application
	// inference profile ARN is about 100 bytes.
	maxModelIDBytes = 256
	maxQueryBytes   = 4 << 10
)

// registerBedrock adds the routes of Claude Code's Bedrock mode
// (ANTHROPIC_BEDROCK_BASE_URL=<warden>/bedrock): the runtime calls, each
// decided as llm:invoke on <provider>/<modelId> (bedrock/… with an
// upstream named bedrock), and the two control-plane reads Claude Code
// makes to choose and resolve models, for any valid Warden token.
func (g *Gateway) registerBedrock(mux *http.ServeMux) {
	mux.HandleFunc("POST /bedrock/model/{modelId}/"+opStream, g.bedrockInvoke(opStream))
	mux.HandleFunc("POST /bedrock/model/{modelId}/"+opInvoke, g.bedrockInvoke(opInvoke))
	mux.HandleFunc("POST /bedrock/model/{modelId}/"+opCountTokens, g.bedrockInvoke(opCountTokens))
	mux.HandleFunc("GET /bedrock/inference-profiles", g.bedrockControl)
	mux.HandleFunc("GET /bedrock/inference-profiles/{id}", g.bedrockControl)
}

// bedrockFront serves Bedrock-mode calls: refusals in Bedrock's error
// format, which Claude Code's Bedrock client shows.
var bedrockFront = front{
	api:       Bedrock,
	maxOutput: func(f *requestFields) int64 { return f.MaxTokens },
	refuse:    bedrockError,
	newMeter: func(stream bool) meter.Meter {
		if stream {
			return newBedrockStream(nil)
		}
		return meter.New(meter.AnthropicMessages, false)
	},
}

// bedrockCountFront serves Bedrock's CountTokens: decided, free.
var bedrockCountFront = front{
	api:       Bedrock,
	free:      true,
	maxOutput: func(*requestFields) int64 { return 0 },
	refuse:    bedrockError,
	newMeter:  func(bool) meter.Meter { return noMeter{} },
}

// bedrockError answers as Bedrock does: {"message":…} with the error's
// name in X-Amzn-ErrorType.
func bedrockError(w http.ResponseWriter, status int, message string) {
	name := "InternalServerException"
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		name = "ValidationException"
	case http.StatusUnauthorized:
		name = "UnrecognizedClientException"
	case http.StatusForbidden:
		name = "AccessDeniedException"
	case http.StatusNotFound:
		name = "ResourceNotFoundException"
	case http.StatusTooManyRequests:
		name = "ThrottlingException"
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		name = "ServiceUnavailableException"
	}
	w.Header().Set("X-Amzn-Errortype", name)
	writeError(w, status, map[string]string{"message": message})
}

// forwardBedrock calls a Bedrock upstream with an Anthropic Messages
// request, translated, and answers in the Messages API: SSE event by
// event, flushed as each arrives, for a streamed call.
func (g *Gateway) forwardBedrock(w http.ResponseWriter, r *http.Request, c *call, hold pipeline.Hold) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	op, accept := opInvoke, "application/json"
	switch {
	case c.front.free:
		op = opCountTokens
	case c.fields.Stream:
		op, accept = opStream, eventStreamType
	}
	body, err := bedrockBody(c.body, r.Header.Values("Anthropic-Beta"), op == opCountTokens)
	if err != nil {
		g.finish(ctx, c, hold, outcome{status: "request not translatable"})
		c.front.refuse(w, http.StatusBadRequest, "Warden cannot translate the request for Bedrock: "+err.Error())
		return
	}
	if op == opCountTokens {
		body, _ = json.Marshal(map[string]any{"input": map[string]any{"invokeModel": map[string]any{"body": body}}})
	}

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	idle := time.AfterFunc(c.upstream.HeaderTimeout, func() { cancel(errUpstreamTimeout) })
	defer idle.Stop()
	resp, fail := g.sendBedrock(ctx, r, c.upstream, bedrockRequest{method: http.MethodPost, path: []string{"model", c.fields.Model, op},
		body: body, header: http.Header{"Content-Type": {"application/json"}, "Accept": {accept}}})
	if fail != nil {
		g.failed(ctx, w, c, hold, fail)
		return
	}
	defer resp.Body.Close()
	if op != opStream || resp.StatusCode/100 != 2 {
		g.Pipeline.Watchdog.Upstream(ctx, c.session, resp.StatusCode)
	} // a stream's result is known at its first message: translateStream
	w.Header().Set("X-Warden-Call", c.ref)
	if id := resp.Header.Get("X-Amzn-Requestid"); id != "" {
		w.Header().Set("Request-Id", id)
	}
	o := outcome{httpCode: resp.StatusCode}

	switch {
	case resp.StatusCode/100 != 2:
		e := readUpstreamError(resp)
		writeAnthropicError(w, e)
		g.settle(ctx, c, hold, o, noMeter{}.Result())
	case op == opCountTokens:
		g.countTokensAnswer(w, c, resp)
		g.settle(ctx, c, hold, o, noMeter{}.Result())
	case op == opInvoke:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		m := meter.New(meter.AnthropicMessages, false)
		o.status = g.relay(ctx, r, c.upstream, resp.Body, idle, func(p []byte) error {
			_ = rc.SetWriteDeadline(time.Now().Add(c.upstream.IdleTimeout))
			_, werr := w.Write(p)
			_, _ = m.Write(p)
			return werr
		})
		res := m.Result()
		g.crossCheck(c, metricsFromHeaders(resp.Header), res)
		g.settle(ctx, c, hold, o, res)
	default:
		g.translateStream(ctx, w, r, rc, c, hold, resp, idle, o)
	}
}

// translateStream answers a streamed call from Bedrock's event stream.
// The answer's status is written with its first event, so that an
// exception before any (a throttled call) is answered with its own status,
// as the Messages API does.
func (g *Gateway) translateStream(ctx context.Context, w http.ResponseWriter, r *http.Request, rc *http.ResponseController, c *call,
	hold pipeline.Hold, resp *http.Response, idle *time.Timer, o outcome) {
	if ct := mediaType(resp.Header.Get("Content-Type")); ct != eventStreamType {
		g.finish(ctx, c, hold, outcome{status: "upstream answered " + clipText(ct, 64), httpCode: resp.StatusCode})
		c.front.refuse(w, http.StatusBadGateway, fmt.Sprintf("Bedrock answered a streamed call with Content-Type %q, not an event stream", clipText(ct, 64)))
		return
	}
	started := false
	s := newBedrockStream(func(ev []byte) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(c.upstream.IdleTimeout))
		if _, err := w.Write(ev); err != nil {
			return err
		}
		return rc.Flush()
	})
	o.status = g.relay(ctx, r, c.upstream, resp.Body, idle, func(p []byte) error {
		_, _ = s.Write(p)
		if s.werr != nil {
			return s.werr
		}
		if s.Done() {
			return errStop
		}
		return nil
	})
	res := s.Result()
	switch {
	case started:
		g.Pipeline.Watchdog.Upstream(ctx, c.session, resp.StatusCode)
	case s.upErr != nil:
		g.Pipeline.Watchdog.Upstream(ctx, c.session, s.upErr.status)
	case s.werr == nil && o.status != "client disconnected":
		g.Pipeline.Watchdog.Upstream(ctx, c.session, http.StatusBadGateway)
	}
	why := firstOf(o.status, s.broken()) // what went wrong, for the agent
	if o.status == "" && s.problem != nil {
		o.status = "upstream stream unreadable"
	}
	switch {
	case s.werr != nil || o.status == "client disconnected":
		o.status = "client disconnected"
	case !started && s.upErr != nil:
		o.httpCode = s.upErr.status // Bedrock bills no refused call: no input is estimated
		writeAnthropicError(w, s.upErr)
	case !started: // charged as forward charges a cut stream: input estimated
		o.status = firstOf(o.status, "incomplete")
		c.front.refuse(w, http.StatusBadGateway, "Warden: Bedrock's answer broke before its first event: "+why)
	case why != "" && s.upErr == nil:
		s.abort("Warden: Bedrock's answer is incomplete: " + why)
	}
	_ = rc.Flush()
	if s.metrics != nil {
		g.crossCheck(c, s.metrics, res)
	}
	g.settle(ctx, c, hold, o, res)
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// countTokensAnswer turns Bedrock's {"inputTokens":N} into the Messages
// API's {"input_tokens":N}.
func (g *Gateway) countTokensAnswer(w http.ResponseWriter, c *call, resp *http.Response) {
	var n struct {
		InputTokens *int64 `json:"inputTokens"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyIn))
	if err != nil || json.Unmarshal(body, &n) != nil || n.InputTokens == nil || *n.InputTokens < 0 {
		c.front.refuse(w, http.StatusBadGateway, "Warden could not read Bedrock's token count")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int64{"input_tokens": *n.InputTokens})
}

// readUpstreamError reads Bedrock's error answer: {"message":…} (or
// "Message") and the error's name in X-Amzn-ErrorType
// ("ThrottlingException:http://internal.amazon.com/…").
func readUpstreamError(resp *http.Response) *upstreamError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyIn))
	var e struct {
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	_ = json.Unmarshal(body, &e)
	name, _, _ := strings.Cut(resp.Header.Get("X-Amzn-Errortype"), ":")
	return newUpstreamError(name, resp.StatusCode, firstOf(e.Message, e.Message2))
}

// writeAnthropicError answers with e in the Messages API's error format.
// Unlike Warden's own refusals it leaves retrying to the client's rules
// (a throttled or overloaded call is retried).
func writeAnthropicError(w http.ResponseWriter, e *upstreamError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(append(e.event(), '\n'))
}

// bedrockInvoke serves a Bedrock-mode runtime call (op): decided like a
// Messages call, on the model in the path, then passed to the Bedrock
// upstream with the body unchanged, and the answer back unchanged while a
// copy of it is metered.
func (g *Gateway) bedrockInvoke(op string) http.HandlerFunc {
	f := bedrockFront
	if op == opCountTokens {
		f = bedrockCountFront
	}
	return func(w http.ResponseWriter, r *http.Request) {
		c, pcall, refuse := g.begin(w, r, f)
		if !readBody(r, c, refuse) {
			return
		}
		model := r.PathValue("modelId")
		if !validModelID(model) {
			refuse(http.StatusBadRequest, fmt.Sprintf("the model ID in the path is empty, longer than %d bytes or not text", maxModelIDBytes))
			return
		}
		pcall.Request.Resource = model
		if err := json.Unmarshal(c.body, &c.fields); err != nil {
			refuse(http.StatusBadRequest, "the request body is not a JSON object: "+jsonProblem(err))
			return
		}
		c.fields.Model, c.fields.Stream = model, op == opStream
		if c.upstream = g.bedrockUpstream(model); c.upstream == nil {
			refuse(http.StatusBadRequest, "Warden has no Bedrock upstream: configure one with api: bedrock in --llm-config")
			return
		}
		pcall.Request.Resource = c.upstream.Provider + "/" + model
		hold, ok := g.admit(w, r, c, pcall, refuse)
		if !ok {
			return
		}
		g.passBedrock(w, r, c, hold, op)
	}
}

// passBedrock sends a Bedrock-mode call on and streams the answer back
// unchanged, flushed as it arrives.
func (g *Gateway) passBedrock(w http.ResponseWriter, r *http.Request, c *call, hold pipeline.Hold, op string) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	// Only the body goes on. The client's X-Amzn-Bedrock-* options stay
	// behind: a service tier, latency optimisation or guardrail is billed
	// apart from the standard-tier tokens the price table knows.
	header := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	if op == opStream {
		header.Set("Accept", eventStreamType)
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	idle := time.AfterFunc(c.upstream.HeaderTimeout, func() { cancel(errUpstreamTimeout) })
	defer idle.Stop()
	resp, fail := g.sendBedrock(ctx, r, c.upstream, bedrockRequest{method: http.MethodPost, path: []string{"model", c.fields.Model, op},
		body: c.body, header: header})
	if fail != nil {
		g.failed(ctx, w, c, hold, fail)
		return
	}
	defer resp.Body.Close()
	g.Pipeline.Watchdog.Upstream(ctx, c.session, resp.StatusCode)

	ok := resp.StatusCode/100 == 2
	stream := ok && op == opStream && mediaType(resp.Header.Get("Content-Type")) == eventStreamType
	var m meter.Meter = noMeter{}
	if ok && (op != opStream || stream) {
		m = c.front.newMeter(stream)
	}
	copyHeaders(w.Header(), resp.Header, "Content-Length")
	w.Header().Set("X-Warden-Call", c.ref)
	w.WriteHeader(resp.StatusCode)
	_ = rc.Flush()
	o := outcome{httpCode: resp.StatusCode}
	o.status = g.relay(ctx, r, c.upstream, resp.Body, idle, func(p []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(c.upstream.IdleTimeout))
		_, werr := w.Write(p)
		if werr == nil && stream {
			werr = rc.Flush()
		}
		_, _ = m.Write(p)
		return werr
	})
	_ = rc.Flush()
	res := m.Result()
	if ok && op == opStream && !stream { // a 2xx answer that is no event stream: charged as unreadable
		res = meter.Result{Estimated: true, Malformed: 1}
		o.status = firstOf(o.status, "upstream answered "+clipText(mediaType(resp.Header.Get("Content-Type")), 64))
	}
	if s, isStream := m.(*bedrockStream); isStream && s.metrics != nil {
		g.crossCheck(c, s.metrics, res)
	} else if ok && op == opInvoke {
		g.crossCheck(c, metricsFromHeaders(resp.Header), res)
	}
	g.settle(ctx, c, hold, o, res)
}

// bedrockControl passes Claude Code's control-plane reads
// (ListInferenceProfiles, GetInferenceProfile) to the Bedrock upstream's
// control-plane endpoint, for any valid Warden token. They are not model
// calls: nothing is decided or recorded.
func (g *Gateway) bedrockControl(w http.ResponseWriter, r *http.Request) {
	if _, err := g.Pipeline.Auth.Authenticate(r.Context(), Token(r)); err != nil {
		bedrockError(w, http.StatusUnauthorized, "Warden: unknown, malformed or expired Warden token")
		return
	}
	up := g.bedrockUpstream("")
	if up == nil {
		bedrockError(w, http.StatusBadRequest, "Warden has no Bedrock upstream: configure one with api: bedrock in --llm-config")
		return
	}
	p := []string{"inference-profiles"}
	if id := r.PathValue("id"); id != "" {
		if !validModelID(id) {
			bedrockError(w, http.StatusBadRequest, "the inference profile ID is empty, too long or not text")
			return
		}
		p = append(p, id)
	}
	if len(r.URL.RawQuery) > maxQueryBytes {
		bedrockError(w, http.StatusBadRequest, fmt.Sprintf("the query is longer than %d bytes", maxQueryBytes))
		return
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	timer := time.AfterFunc(up.HeaderTimeout, func() { cancel(errUpstreamTimeout) })
	defer timer.Stop()
	resp, fail := g.sendBedrock(ctx, r, up, bedrockRequest{method: http.MethodGet, control: true, path: p, query: r.URL.RawQuery,
		header: http.Header{"Accept": {"application/json"}}})
	if fail != nil {
		bedrockError(w, http.StatusBadGateway, fail.message)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxControlBytes+1))
	if err != nil || len(body) > maxControlBytes {
		bedrockError(w, http.StatusBadGateway, fmt.Sprintf("Warden could not read the answer of the Bedrock upstream %s (at most %d MB)", up.Name, maxControlBytes>>20))
		return
	}
	copyHeaders(w.Header(), resp.Header, "Content-Length")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// bedrockUpstream is the upstream of a Bedrock-mode call: that of the
// first route whose pattern matches the model and names a Bedrock
// upstream; else the first Bedrock upstream a route names; else the
// Bedrock upstream first by name. nil when there is none.
func (g *Gateway) bedrockUpstream(model string) *Upstream {
	var first *Upstream
	for _, rt := range g.Config.Routes {
		u := g.Config.Upstreams[rt.Upstream]
		if u == nil || u.API != Bedrock {
			continue
		}
		if ok, _ := path.Match(rt.Model, model); ok && model != "" {
			return u
		}
		if first == nil {
			first = u
		}
	}
	if first != nil {
		return first
	}
	names := make([]string, 0, len(g.Config.Upstreams))
	for n, u := range g.Config.Upstreams {
		if u.API == Bedrock {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return g.Config.Upstreams[names[0]]
}

// bedrockRequest is one call to a Bedrock endpoint.
type bedrockRequest struct {
	method string
	// control calls the control plane (bedrock.<region>…) rather than
	// the runtime the upstream's URL names.
	control bool
	path    []string // segments after the URL's path, escaped here
	query   string   // raw
	body    []byte
	header  http.Header
}

// sendFailure is why a call did not reach Bedrock or got no answer: a
// status to record and a message for the agent, free of secrets.
type sendFailure struct{ status, message string }

// failed ends a call that got no answer, as forward does: the watchdog
// counts it (unless the agent left), the call is recorded, the agent told.
func (g *Gateway) failed(ctx context.Context, w http.ResponseWriter, c *call, hold pipeline.Hold, fail *sendFailure) {
	if fail.status != "client disconnected" {
		g.Pipeline.Watchdog.Upstream(ctx, c.session, 0)
	}
	g.finish(ctx, c, hold, outcome{status: fail.status})
	c.front.refuse(w, http.StatusBadGateway, fail.message)
}

// sendBedrock signs and sends one request and waits for the answer's
// headers. ctx is cancelled with errUpstreamTimeout when the caller's
// timer fires.
func (g *Gateway) sendBedrock(ctx context.Context, r *http.Request, u *Upstream, br bedrockRequest) (*http.Response, *sendFailure) {
	target := *u.URL
	if br.control {
		target.Host = controlHost(target.Host)
	}
	p, raw := strings.TrimSuffix(target.Path, "/"), strings.TrimSuffix(target.EscapedPath(), "/")
	for _, seg := range br.path {
		p, raw = p+"/"+seg, raw+"/"+httpbinding.EscapePath(seg, true) // as the AWS SDKs escape a model ID
	}
	target.Path, target.RawPath, target.RawQuery, target.Fragment = p, raw, br.query, ""
	req, err := http.NewRequestWithContext(ctx, br.method, target.String(), bytes.NewReader(br.body))
	if err != nil {
		return nil, &sendFailure{"bad upstream URL", "Warden could not build the request to the Bedrock upstream " + u.Name}
	}
	req.URL = &target
	for k, vs := range br.header {
		req.Header[k] = vs
	}
	if u.Key != "" { // a Bedrock API key
		req.Header.Set("Authorization", "Bearer "+u.Key)
	} else if fail := g.signAWS(ctx, req, u, br.body); fail != nil {
		return nil, fail
	}
	resp, err := g.transport().RoundTrip(req)
	if err != nil {
		switch {
		case errors.Is(context.Cause(ctx), errUpstreamTimeout):
			return nil, &sendFailure{"upstream timeout", fmt.Sprintf("the upstream %s did not answer within %s", u.Name, u.HeaderTimeout)}
		case r.Context().Err() != nil:
			return nil, &sendFailure{"client disconnected", "the client went away"}
		}
		return nil, &sendFailure{"upstream unreachable", "Warden could not reach the upstream " + u.Name}
	}
	return resp, nil
}

// signAWS signs req with SigV4 for the service bedrock.
func (g *Gateway) signAWS(ctx context.Context, req *http.Request, u *Upstream, body []byte) *sendFailure {
	cfg, err := g.awsConfig(ctx)
	if err != nil {
		g.log().Error("load the AWS configuration for bedrock", "upstream", u.Name, "err", err)
		return &sendFailure{"no AWS credentials", fmt.Sprintf("Warden could not load its AWS configuration for the Bedrock upstream %s", u.Name)}
	}
	region, ok := bedrockRegion(u.URL.Hostname())
	if !ok {
		region = cfg.Region
	}
	if region == "" {
		return &sendFailure{"no AWS region", fmt.Sprintf("Warden cannot tell the AWS region of the Bedrock upstream %s: its URL names none (bedrock-runtime.REGION.amazonaws.com) and no region is configured (AWS_REGION)", u.Name)}
	}
	if cfg.Credentials == nil {
		return &sendFailure{"no AWS credentials", fmt.Sprintf("Warden has no AWS credentials for the Bedrock upstream %s", u.Name)}
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		if errors.Is(context.Cause(ctx), errUpstreamTimeout) {
			return &sendFailure{"upstream timeout", fmt.Sprintf("Warden could not get AWS credentials for the upstream %s within %s", u.Name, u.HeaderTimeout)}
		}
		g.log().Error("retrieve AWS credentials for bedrock", "upstream", u.Name, "err", err)
		return &sendFailure{"no AWS credentials", fmt.Sprintf("Warden could not get AWS credentials for the Bedrock upstream %s", u.Name)}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "bedrock", region, time.Now()); err != nil {
		return &sendFailure{"signing failed", fmt.Sprintf("Warden could not sign the request to the Bedrock upstream %s", u.Name)}
	}
	return nil
}

func (g *Gateway) awsConfig(ctx context.Context) (aws.Config, error) {
	switch {
	case g.AWS != nil:
		return *g.AWS, nil
	case g.LoadAWS != nil:
		return g.LoadAWS(ctx)
	}
	return aws.Config{}, errors.New("no AWS configuration")
}

// bedrockRegion reads the region from a Bedrock endpoint's host:
// bedrock-runtime.<region>.amazonaws.com, bedrock-runtime-fips.<region>…,
// a VPC endpoint's …bedrock-runtime.<region>.vpce.amazonaws.com, and the
// control plane's bedrock.<region>….
func bedrockRegion(host string) (string, bool) {
	labels := strings.Split(strings.ToLower(host), ".")
	for i := 0; i+1 < len(labels); i++ {
		switch labels[i] {
		case "bedrock-runtime", "bedrock-runtime-fips", "bedrock", "bedrock-fips":
			if validRegion(labels[i+1]) {
				return labels[i+1], true
			}
		}
	}
	return "", false
}

// validRegion accepts the shape of an AWS region: us-east-1, eu-central-2,
// us-gov-west-1, ap-southeast-4.
func validRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(parts[0]) != 2 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		for _, c := range []byte(p) {
			letter, digit := 'a' <= c && c <= 'z', '0' <= c && c <= '9'
			if i == len(parts)-1 && !digit || i < len(parts)-1 && !letter {
				return false
			}
		}
	}
	return true
}

// controlHost is the control-plane host beside a runtime host:
// bedrock-runtime.<region>… -> bedrock.<region>…; any other host (a
// proxy, a stand-in) serves both.
func controlHost(host string) string {
	for _, p := range [][2]string{{"bedrock-runtime-fips.", "bedrock-fips."}, {"bedrock-runtime.", "bedrock."}} {
		if len(host) > len(p[0]) && strings.EqualFold(host[:len(p[0])], p[0]) {
			return p[1] + host[len(p[0]):]
		}
	}
	return host
}

// bedrockBody translates a Messages request body into InvokeModel's:
// model and stream go (the model is in the path), anthropic_version
// comes, the anthropic-beta header's values join the body's
// anthropic_beta list, and everything else stays. CountTokens needs a
// complete InvokeModel body, so max_tokens is set when absent.
func bedrockBody(body []byte, betaHeaders []string, countTokens bool) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, errors.New("the body is not a JSON object")
	}
	delete(m, "model")
	delete(m, "stream")
	m["anthropic_version"] = json.RawMessage(`"` + bedrockVersion + `"`)
	var betas []string
	if raw, ok := m["anthropic_beta"]; ok {
		if err := json.Unmarshal(raw, &betas); err != nil {
			return nil, errors.New("anthropic_beta is not a list of strings")
		}
	}
	seen := make(map[string]bool, len(betas))
	for _, b := range betas {
		seen[b] = true
	}
	for _, h := range betaHeaders {
		for b := range strings.SplitSeq(h, ",") {
			if b = strings.TrimSpace(b); b != "" && !seen[b] {
				seen[b] = true
				betas = append(betas, b)
			}
		}
	}
	if len(betas) > 0 {
		m["anthropic_beta"], _ = json.Marshal(betas)
	}
	if _, ok := m["max_tokens"]; countTokens && !ok {
		m["max_tokens"] = json.RawMessage("1")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("re-encode the body: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// validModelID accepts a model ID, inference profile ID or ARN from a path.
func validModelID(s string) bool {
	if s == "" || len(s) > maxModelIDBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// errStop is returned by a relay's taker that needs no more of the body.
var errStop = errors.New("stop")

// relay reads an upstream body to its end, handing each chunk to take,
// with the upstream's IdleTimeout between reads, as forward does. It
// returns why it stopped early ("" at the end, or when take returned
// errStop); any other error from take is the client's.
func (g *Gateway) relay(ctx context.Context, r *http.Request, up *Upstream, body io.Reader, idle *time.Timer, take func([]byte) error) string {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		idle.Reset(up.IdleTimeout)
		n, rerr := body.Read(buf)
		if n > 0 {
			if err := take(buf[:n]); errors.Is(err, errStop) {
				return ""
			} else if err != nil {
				return "client disconnected"
			}
		}
		switch {
		case rerr == io.EOF:
			return ""
		case rerr == nil:
		case errors.Is(context.Cause(ctx), errUpstreamTimeout):
			return fmt.Sprintf("upstream silent for %s", up.IdleTimeout)
		case r.Context().Err() != nil:
			return "client disconnected"
		default:
			return "upstream stream broken"
		}
	}
}

// settle completes a call's outcome from its meter's result, as forward
// does, and finishes the call.
func (g *Gateway) settle(ctx context.Context, c *call, hold pipeline.Hold, o outcome, res meter.Result) {
	o.tokens, o.model, o.estimated = res.Tokens, res.Model, res.Estimated
	if o.httpCode/100 == 2 && !res.InputCounted && !c.front.free {
		// The answer ended before Bedrock counted the input: every input
		// token is at least meter.BytesPerToken bytes of the request.
		o.tokens.Input = max(o.tokens.Input, int64(len(c.body))/meter.BytesPerToken)
		o.estimated = true
	}
	if o.status == "" {
		switch {
		case o.httpCode/100 != 2 && res.Error != nil:
			o.status = "upstream error: " + res.Error.Error()
		case o.httpCode/100 != 2:
			o.status = fmt.Sprintf("upstream %d", o.httpCode)
		case res.Error != nil:
			o.status = "upstream error: " + res.Error.Error()
		case !res.Complete:
			o.status = "incomplete"
		default:
			o.status = "ok"
		}
	}
	g.finish(context.WithoutCancel(ctx), c, hold, o)
}

// crossCheck compares the usage Warden charges with the counts Bedrock
// reported beside it, and logs a disagreement for the operator.
func (g *Gateway) crossCheck(c *call, m *invocationMetrics, res meter.Result) {
	if m == nil || !res.Complete || !m.disagrees(res.Tokens) {
		return
	}
	t := res.Tokens
	g.log().Warn("bedrock's invocation metrics disagree with the usage in its answer; the answer's usage is charged",
		"ref", c.ref, "model", c.fields.Model, "metrics", m.String(),
		"usage", fmt.Sprintf("input %d, output %d, cache read %d, cache write %d", t.Input, t.Output, t.CacheRead, t.CacheWrite5m+t.CacheWrite1h))
}
