// Package llm is Warden's LLM gateway: the model-facing front ends that
// Claude Code (Anthropic Messages API) and Codex (OpenAI Responses API)
// are pointed at. The agent authenticates with its Warden session token;
// Warden decides llm:invoke on the model, reserves the call's worst-case
// cost, records the decision, and only then calls the upstream with the
// provider key that only it holds. The answer streams back to the agent
// as it arrives while the usage is read out of it; the call is then
// priced, the reservation settled with the real cost, and the usage
// recorded, linked to the decision.
package llm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/llm/meter"
	"github.com/wardenhq/warden/shared/pipeline"
	"github.com/wardenhq/warden/shared/pricing"
)

// Limits of what the gateway accepts from an agent.
const (
	// MaxBodyBytes bounds a request body (the Anthropic API's own limit).
	MaxBodyBytes = 32 << 20
	// DefaultMaxOutput is the output reserved for a call that names no
	// maximum (the Responses API's max_output_tokens is optional).
	DefaultMaxOutput = 64_000
)

// Gateway serves the model APIs.
type Gateway struct {
	Pipeline *pipeline.Pipeline
	Config   *Config
	Prices   *pricing.Table
	// Transport calls the upstreams; http.DefaultTransport when nil.
	Transport http.RoundTripper
	Log       *slog.Logger
	Now       func() time.Time

	// AWS holds the credentials (and the region, for an endpoint whose
	// host names none) that Bedrock upstreams are signed with; when it is
	// nil, LoadAWS is asked for them at each use (the local server loads
	// the standard chain of the process once). With neither, a Bedrock
	// upstream without a key is refused for want of credentials.
	AWS     *aws.Config
	LoadAWS func(context.Context) (aws.Config, error)
}

// Register adds the gateway's routes to mux.
func (g *Gateway) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/messages", g.serve(anthropicFront))
	mux.HandleFunc("POST /v1/messages/count_tokens", g.serve(countTokensFront))
	mux.HandleFunc("GET /v1/models", g.models)
	mux.HandleFunc("POST /v1/responses", g.serve(responsesFront))
	mux.HandleFunc("POST /v1/chat/completions", g.serve(chatFront))
	g.registerBedrock(mux)
}

// front is what differs between the APIs a front end serves.
type front struct {
	api API
	// free calls are not priced or metered (count_tokens).
	free bool
	// maxOutput reads the request's output cap, 0 when it names none.
	maxOutput func(body *requestFields) int64
	// refuse writes a refusal in the API's error format.
	refuse func(w http.ResponseWriter, status int, message string)
	// rateLimitStatus, when not 0, replaces 429 for Warden's own rate-limit
	// refusals: Codex hides the message of a 429 and shows a 403's.
	rateLimitStatus int
	// newMeter reads usage from the answer: streamed (SSE) or not.
	newMeter func(stream bool) meter.Meter
}

// requestFields are the few fields the gateway reads from a request; the
// body itself goes upstream unchanged.
type requestFields struct {
	Model               string `json:"model"`
	Stream              bool   `json:"stream"`
	MaxTokens           int64  `json:"max_tokens"`
	MaxOutputTokens     int64  `json:"max_output_tokens"`
	MaxCompletionTokens int64  `json:"max_completion_tokens"`
}

// call is one model call on its way through.
type call struct {
	start    time.Time
	front    front
	token    string
	session  identity.Session
	fields   requestFields
	body     []byte
	upstream *Upstream
	price    pricing.Price
	ref      string
}

func (g *Gateway) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Gateway) log() *slog.Logger {
	if g.Log != nil {
		return g.Log
	}
	return slog.Default()
}

// Token returns the Warden token an agent sends as its API key: in
// x-api-key (ANTHROPIC_API_KEY) or as a bearer token (ANTHROPIC_AUTH_TOKEN,
// OpenAI clients).
func Token(r *http.Request) string {
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// clientSession is the agent's own session ID: Claude Code sends it as
// X-Claude-Code-Session-Id, Codex as session-id.
func clientSession(r *http.Request) string {
	s := r.Header.Get("X-Claude-Code-Session-Id")
	if s == "" {
		s = r.Header.Get("Session-Id")
	}
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

func (g *Gateway) serve(f front) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, pcall, refuse := g.begin(w, r, f)
		if !readBody(r, c, refuse) {
			return
		}
		if err := json.Unmarshal(c.body, &c.fields); err != nil {
			refuse(http.StatusBadRequest, "the request body is not a JSON object: "+jsonProblem(err))
			return
		}
		if c.fields.Model == "" || len(c.fields.Model) > 256 {
			refuse(http.StatusBadRequest, "the request names no model")
			return
		}
		var err error
		if c.upstream, err = g.Config.Resolve(f.api, c.fields.Model); err != nil {
			pcall.Request.Resource = c.fields.Model
			refuse(http.StatusBadRequest, err.Error())
			return
		}
		pcall.Request.Resource = c.upstream.Provider + "/" + c.fields.Model
		hold, ok := g.admit(w, r, c, pcall, refuse)
		if !ok {
			return
		}
		if c.upstream.MissingKey() {
			g.finish(r.Context(), c, hold, outcome{status: "no provider key"})
			f.refuse(w, http.StatusBadGateway, fmt.Sprintf("Warden has no key for upstream %s (%s is empty)", c.upstream.Name, c.upstream.KeySource))
			return
		}
		g.forward(w, r, c, hold)
	}
}

// begin starts a call through front f: the call, its request to the
// pipeline (llm:invoke; the resource is filled in once known), and how to
// refuse it before a decision — recorded, and answered in f's format.
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request, f front) (*call, *pipeline.Call, func(int, string)) {
	c := &call{start: g.now(), front: f, token: Token(r), ref: "llm_" + audit.NewID()[:24]}
	pcall := &pipeline.Call{Token: c.token, ClientSession: clientSession(r), Ref: c.ref,
		Request: policy.Request{Action: "llm:invoke"}}
	refuse := func(status int, msg string) {
		g.Pipeline.Refuse(r.Context(), *pcall, &pipeline.Refusal{Status: status, Message: msg})
		f.refuse(w, status, msg)
	}
	return c, pcall, refuse
}

// readBody reads the request body into c, refusing one that cannot be read
// or is larger than MaxBodyBytes.
func readBody(r *http.Request, c *call, refuse func(int, string)) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	switch {
	case err != nil:
		refuse(http.StatusBadRequest, "could not read the request body")
		return false
	case len(body) > MaxBodyBytes:
		refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d MB", MaxBodyBytes>>20))
		return false
	}
	c.body = body
	return true
}

// admit prices a call (unless free), reserves its worst case and has the
// pipeline decide it. It answers a refusal itself.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, c *call, pcall *pipeline.Call, refuse func(int, string)) (pipeline.Hold, bool) {
	var worst pipeline.Cost
	if !c.front.free {
		price, ok := g.Prices.Lookup(c.upstream.Provider, c.fields.Model)
		if !ok {
			refuse(http.StatusForbidden, fmt.Sprintf("model %s/%s has no price in Warden's price table, so it is refused rather than counted as free; add its price (warden serve --prices FILE)", c.upstream.Provider, c.fields.Model))
			return nil, false
		}
		c.price = price
		maxOut := c.front.maxOutput(&c.fields)
		if maxOut <= 0 {
			maxOut = DefaultMaxOutput
		}
		// Every input token is at least one byte of the body.
		worst = pipeline.Cost{USD: price.WorstCase(int64(len(c.body)), maxOut), Tokens: int64(len(c.body)) + maxOut}
	}
	pcall.Cost = worst
	sum := sha256.Sum256(c.body)
	pcall.Args = map[string]any{"model": c.fields.Model, "stream": c.fields.Stream, "max_output": c.front.maxOutput(&c.fields),
		"body_bytes": len(c.body), "body_sha256": hex.EncodeToString(sum[:]), "worst_case_usd": worst.USD.Decimal(), "upstream": c.upstream.Name}
	v := g.Pipeline.Decide(r.Context(), *pcall)
	if !v.Allowed {
		status := v.Refusal.Status
		switch ra := v.Refusal.RetryAfter; {
		case ra > 0 && c.front.rateLimitStatus != 0:
			status = c.front.rateLimitStatus // the message says when to retry
		case ra > 0:
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ra.Seconds()))))
		}
		c.front.refuse(w, status, "Warden: "+v.Refusal.Message)
		return nil, false
	}
	c.session = v.Session
	return v.Hold, true
}

// jsonProblem describes a JSON decoding error without echoing the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	}
	return "malformed"
}

// outcome is how a call ended.
type outcome struct {
	status    string
	httpCode  int
	tokens    pricing.Tokens
	model     string
	estimated bool
}

// finish prices the call, settles its reservation and records its usage.
func (g *Gateway) finish(ctx context.Context, c *call, hold pipeline.Hold, o outcome) {
	ctx = context.WithoutCancel(ctx) // a client that went away is still charged
	var cost pricing.Money
	if !c.front.free {
		cost = c.price.Cost(o.tokens)
	}
	tokens := o.tokens.Prompt() + o.tokens.Output
	if hold != nil {
		hold.Settle(ctx, pipeline.Cost{USD: cost, Tokens: tokens})
	}
	if tokens > 0 {
		g.Pipeline.Watchdog.Tokens(ctx, c.session, tokens)
	}
	if c.front.free {
		return
	}
	model := o.model
	if model == "" {
		model = c.fields.Model
	}
	u := audit.Usage{Provider: c.upstream.Provider, Model: model, InputTokens: o.tokens.Input, OutputTokens: o.tokens.Output,
		CacheReadTokens: o.tokens.CacheRead, CacheWrite5mTokens: o.tokens.CacheWrite5m, CacheWrite1hTokens: o.tokens.CacheWrite1h,
		ReasoningTokens: o.tokens.Reasoning, CostUSD: cost.Decimal(), Estimated: o.estimated}
	args, _ := json.Marshal(u)
	rec := audit.Record{Code: audit.LLMUsage, Kind: "llm", Action: "llm:invoke", Resource: c.upstream.Provider + "/" + c.fields.Model,
		Ref: c.ref, Status: o.status, DurationMS: g.now().Sub(c.start).Milliseconds(), Args: args}
	// The agent has its answer: the record goes with the next decision's
	// commit, and so does the settlement above.
	g.Pipeline.OutcomeDeferred(ctx, c.session, rec)
}

// hopHeaders are not forwarded, in either direction (RFC 9110 7.6.1), and
// neither are the agent's credentials, which are Warden's, not the
// provider's.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func copyHeaders(dst, src http.Header, skip ...string) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
	for _, h := range src.Values("Connection") {
		for _, f := range strings.Split(h, ",") {
			dst.Del(strings.TrimSpace(f))
		}
	}
	for _, h := range skip {
		dst.Del(h)
	}
}

// copyBufs are the buffers answers are copied through, 32 KiB each: one
// per call in flight rather than a new one per call for the collector.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// forward calls the upstream and streams its answer back.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, c *call, hold pipeline.Hold) {
	if c.upstream.API == Bedrock {
		g.forwardBedrock(w, r, c, hold)
		return
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	up, err := upstreamRequest(ctx, c.upstream, r, c.body)
	if err != nil {
		g.finish(ctx, c, hold, outcome{status: "bad upstream URL"})
		c.front.refuse(w, http.StatusBadGateway, "Warden could not build the upstream request")
		return
	}

	// The upstream has HeaderTimeout to answer, then IdleTimeout between
	// reads; the server's own write timeout, made for short answers, is
	// replaced by a deadline per write.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	idle := time.AfterFunc(c.upstream.HeaderTimeout, func() { cancel(errUpstreamTimeout) })
	defer idle.Stop()
	resp, err := g.transport().RoundTrip(up)
	if err != nil {
		status := "upstream unreachable"
		msg := "Warden could not reach the upstream " + c.upstream.Name
		if errors.Is(context.Cause(ctx), errUpstreamTimeout) {
			status, msg = "upstream timeout", fmt.Sprintf("the upstream %s did not answer within %s", c.upstream.Name, c.upstream.HeaderTimeout)
		} else if r.Context().Err() != nil {
			status = "client disconnected"
		}
		if status != "client disconnected" {
			g.Pipeline.Watchdog.Upstream(ctx, c.session, 0) // no answer
		}
		g.finish(ctx, c, hold, outcome{status: status})
		c.front.refuse(w, http.StatusBadGateway, msg)
		return
	}
	defer resp.Body.Close()
	g.Pipeline.Watchdog.Upstream(ctx, c.session, resp.StatusCode)

	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	m := c.front.newMeter(stream)
	// An answer that passes through as it came keeps its length, so that
	// the agent has it whole before the call is settled and recorded.
	var skip []string
	if resp.Uncompressed || resp.ContentLength < 0 {
		skip = []string{"Content-Length"}
	}
	copyHeaders(w.Header(), resp.Header, skip...)
	w.Header().Set("X-Warden-Call", c.ref)
	w.WriteHeader(resp.StatusCode)
	if stream {
		_ = rc.Flush() // the agent sees the stream begin; a whole answer goes out with its header
	}

	o := outcome{httpCode: resp.StatusCode}
	// delivered: the agent had the whole streamed answer before it left
	// (a client may hang up once it has the end, before the stream's last
	// bytes), so the call is whole, not cut.
	delivered := false
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		idle.Reset(c.upstream.IdleTimeout)
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			// The agent gets the bytes first; what the upstream produced
			// is metered whether or not the agent is still there.
			_ = rc.SetWriteDeadline(time.Now().Add(c.upstream.IdleTimeout))
			_, werr := w.Write(buf[:n])
			if werr == nil && stream {
				werr = rc.Flush()
			}
			if werr != nil && stream {
				delivered = m.Result().Complete // before this chunk, which it did not get
			}
			_, _ = m.Write(buf[:n])
			if werr != nil {
				o.status = "client disconnected"
				break
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			switch {
			case errors.Is(context.Cause(ctx), errUpstreamTimeout):
				o.status = fmt.Sprintf("upstream silent for %s", c.upstream.IdleTimeout)
			case r.Context().Err() != nil:
				o.status = "client disconnected"
				delivered = stream && m.Result().Complete
			default:
				o.status = "upstream stream broken"
			}
			break
		}
	}
	_ = rc.Flush()
	res := m.Result()
	if o.status == "client disconnected" && delivered {
		o.status = ""
	}
	o.tokens, o.model, o.estimated = res.Tokens, res.Model, res.Estimated
	if resp.StatusCode/100 == 2 && !res.InputCounted {
		// The answer ended before the provider counted the input (an
		// OpenAI stream cut short): every input token is at least
		// meter.BytesPerToken bytes of the request, so this leans high.
		o.tokens.Input = max(o.tokens.Input, int64(len(c.body))/meter.BytesPerToken)
		o.estimated = true
	}
	if o.status == "" {
		switch {
		case resp.StatusCode/100 != 2:
			o.status = fmt.Sprintf("upstream %d", resp.StatusCode)
		case res.Error != nil:
			o.status = "upstream error: " + res.Error.Error()
		case !res.Complete:
			o.status = "incomplete"
		default:
			o.status = "ok"
		}
	}
	g.finish(ctx, c, hold, o)
}

var errUpstreamTimeout = errors.New("upstream timeout")

// upstreamRequest is r, with body, addressed to the upstream: the same
// path under the upstream's URL, the same query and headers, except the
// agent's credentials, replaced by the provider's key. Accept-Encoding is
// left to the transport, which asks for gzip and decompresses, so that
// the usage can be read from the answer.
func upstreamRequest(ctx context.Context, u *Upstream, r *http.Request, body []byte) (*http.Request, error) {
	target := *u.URL
	target.Path = strings.TrimSuffix(target.Path, "/") + r.URL.Path
	target.RawQuery = r.URL.RawQuery
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, target.String(), rd)
	if err != nil {
		return nil, err
	}
	copyHeaders(req.Header, r.Header, "Authorization", "X-Api-Key", "Host", "Content-Length", "Accept-Encoding", "Cookie")
	if u.API == Anthropic {
		req.Header.Set("X-Api-Key", u.Key)
	} else {
		req.Header.Set("Authorization", "Bearer "+u.Key)
	}
	return req, nil
}

func (g *Gateway) transport() http.RoundTripper {
	if g.Transport != nil {
		return g.Transport
	}
	return upstreamTransport
}

// upstreamTransport keeps connections to the upstreams open for reuse:
// http.DefaultTransport keeps two per host, fewer than the calls an agent
// fleet has in flight.
var upstreamTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 256
	return t
}()

// models answers GET /v1/models from the first upstream of the API the
// client speaks (Anthropic clients send anthropic-version).
func (g *Gateway) models(w http.ResponseWriter, r *http.Request) {
	api, f := OpenAI, responsesFront
	if r.Header.Get("Anthropic-Version") != "" {
		api, f = Anthropic, anthropicFront
	}
	if _, err := g.Pipeline.Auth.Authenticate(r.Context(), Token(r)); err != nil {
		f.refuse(w, http.StatusUnauthorized, "Warden: unknown, malformed or expired Warden token")
		return
	}
	var up *Upstream
	for _, rt := range g.Config.Routes {
		if u := g.Config.Upstreams[rt.Upstream]; u.API == api {
			up = u
			break
		}
	}
	if up == nil || up.MissingKey() {
		f.refuse(w, http.StatusBadGateway, fmt.Sprintf("Warden has no %s upstream with a key", api))
		return
	}
	req, err := upstreamRequest(r.Context(), up, r, nil)
	if err != nil {
		f.refuse(w, http.StatusBadGateway, "Warden could not build the upstream request")
		return
	}
	resp, err := g.transport().RoundTrip(req)
	if err != nil {
		f.refuse(w, http.StatusBadGateway, "Warden could not reach the upstream "+up.Name)
		return
	}
	defer resp.Body.Close()
	copyHeaders(w.Header(), resp.Header, "Content-Length")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, MaxBodyBytes))
}
