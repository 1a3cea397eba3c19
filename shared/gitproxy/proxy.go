package gitproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/hooks"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/pipeline"
)

// PathPrefix is where the proxy is mounted: an agent's remote is
// <warden>/git/<host>/<org>/<repo>.git.
const PathPrefix = "/git/"

// Upstream is where a repository's requests go, and the credential Warden
// holds for it. The agent never sees the credential.
type Upstream struct {
	// URL is the base the repository's path is appended to, e.g.
	// https://github.com.
	URL string
	// Username and Password are sent as Basic authentication, when set.
	Username, Password string
}

// Upstreams finds the upstream of a repository: host and path as in the
// agent's remote (github.com, acme/web).
type Upstreams interface {
	Lookup(ctx context.Context, host, repo string) (Upstream, error)
}

// The content types of git's smart-HTTP requests: binary (a pack, a
// gzipped negotiation), so a gateway in front must pass them as bytes.
const (
	UploadPackRequest  = "application/x-git-upload-pack-request"
	ReceivePackRequest = "application/x-git-receive-pack-request"
)

// PostBufferHeader carries the client's http.postBuffer, which agent
// setup sets to the remote's push limit (ClientSettings). git sends a
// request larger than its buffer only after a probe (a lone flush), so a
// push's probe with this header at or above the limit announces a push
// the remote cannot take, before git sends it.
const PostBufferHeader = "X-Warden-Git-Post-Buffer"

// Limit is a bound on the bytes of a push or of a fetch's answer, and
// what imposes it.
type Limit struct {
	Bytes int64
	// Why names what imposes it, e.g. "Lambda's 6 MB request payload".
	Why string
}

// ErrNoUpstream is Lookup's answer for a host Warden does not proxy.
var ErrNoUpstream = errors.New("no upstream is configured for this host")

// Proxy is the smart-HTTP proxy. Pipeline and Upstreams are required.
type Proxy struct {
	Pipeline  *pipeline.Pipeline
	Upstreams Upstreams
	// HTTP sends the upstream requests; it must not follow redirects.
	// Default: a client without a timeout (a clone may take long) that
	// follows none.
	HTTP *http.Client
	// MaxPush, when set, bounds pushes (on AWS, to what reaches the
	// function at all): a push git announces as larger by its probe is
	// refused before git sends it. Zero: pushes of any size stream.
	MaxPush Limit
	// MaxAnswer, when set, bounds the answer to a clone or fetch (on AWS,
	// what Lambda streams): one that would pass it ends with an error git
	// prints instead of a pack cut short. So does one that would outlast
	// the request's deadline (a function's timeout). Zero: any size.
	MaxAnswer Limit
	Log       *slog.Logger
}

// Limits.
const (
	// upstreamHeaderTimeout bounds the wait for the upstream's answer to
	// begin; its body (a clone) may take as long as it takes.
	upstreamHeaderTimeout = 30 * time.Second
	// maxDrain bounds what is read of a refused push before answering, so
	// that git, still sending its pack, reads the answer.
	maxDrain = 512 << 20
)

func (p *Proxy) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

func (p *Proxy) client() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return &http.Client{
		Transport:     &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: upstreamHeaderTimeout},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// route is a request's repository and what it asks.
type route struct {
	host, repo string // github.com, acme/web (no .git)
	service    string // git-upload-pack or git-receive-pack
	refs       bool   // GET info/refs (the advertisement)
}

// resource is the repository as policies name it: github.com/acme/web.
func (rt route) resource() string { return rt.host + "/" + rt.repo }

// parseRoute reads /git/<host>/<repo>[.git]/(info/refs|git-upload-pack|git-receive-pack).
func parseRoute(r *http.Request) (route, error) {
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		return route{}, errors.New("not a git path")
	}
	var rt route
	switch {
	case strings.HasSuffix(rest, "/info/refs") && r.Method == http.MethodGet:
		rt.refs, rest = true, strings.TrimSuffix(rest, "/info/refs")
		rt.service = r.URL.Query().Get("service")
		if rt.service != "git-upload-pack" && rt.service != "git-receive-pack" {
			return route{}, errors.New("only git's smart HTTP protocol is served (info/refs?service=git-upload-pack or git-receive-pack)")
		}
	case strings.HasSuffix(rest, "/git-upload-pack") && r.Method == http.MethodPost:
		rt.service, rest = "git-upload-pack", strings.TrimSuffix(rest, "/git-upload-pack")
	case strings.HasSuffix(rest, "/git-receive-pack") && r.Method == http.MethodPost:
		rt.service, rest = "git-receive-pack", strings.TrimSuffix(rest, "/git-receive-pack")
	default:
		return route{}, fmt.Errorf("%s %s is not a request of git's smart HTTP protocol", r.Method, r.URL.Path)
	}
	host, repo, ok := strings.Cut(rest, "/")
	repo = strings.TrimSuffix(repo, ".git")
	if !ok || !validHost(host) || !validRepo(repo) {
		return route{}, fmt.Errorf("%q is not <host>/<org>/<repo>.git", rest)
	}
	rt.host, rt.repo = host, repo
	return rt, nil
}

func validHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

func validRepo(s string) bool {
	if s == "" || len(s) > 512 || strings.Contains(s, "..") || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-/", c) >= 0) {
			return false
		}
	}
	return true
}

// token is the Warden session token of a request: the password of its
// Basic authentication (git's credential helper), or a Bearer token.
func token(r *http.Request) string {
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return hooks.BearerToken(r)
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, err := parseRoute(r)
	if err != nil {
		http.Error(w, "warden: "+err.Error(), http.StatusNotFound)
		return
	}
	// A clone or a push may take longer than the server's timeouts for
	// API calls: this request has none (where the server lets it say so).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	tok := token(r)
	if tok == "" {
		// git asks its credential helper (warden git-credential) and tries again.
		w.Header().Set("WWW-Authenticate", `Basic realm="Warden"`)
		http.Error(w, "warden: this remote needs the agent's Warden session token", http.StatusUnauthorized)
		return
	}
	up, err := p.Upstreams.Lookup(r.Context(), rt.host, rt.repo)
	if err != nil {
		if !errors.Is(err, ErrNoUpstream) {
			p.log().Error("git: look up the upstream", "host", rt.host, "err", err)
		}
		http.Error(w, fmt.Sprintf("warden: %s: %v", rt.host, err), http.StatusNotFound)
		return
	}
	switch {
	case rt.service == "git-receive-pack" && !rt.refs:
		p.receivePack(w, r, rt, up, tok)
	case rt.service == "git-receive-pack":
		// The advertisement of a push: the session must be live; each
		// ref is decided when the push comes.
		if _, err := p.Pipeline.Auth.Authenticate(r.Context(), tok); err != nil {
			p.refuseAuth(w, err)
			return
		}
		p.forward(w, r, rt, up, r.Body)
	default:
		v := p.Pipeline.Decide(r.Context(), pipeline.Call{Token: tok, Request: policy.Request{Action: "git:fetch", Resource: rt.resource()}})
		if !v.Allowed {
			refuse(w, v.Refusal)
			return
		}
		p.forward(w, r, rt, up, r.Body)
	}
}

func (p *Proxy) refuseAuth(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, identity.ErrRevoked):
		http.Error(w, "warden: "+err.Error(), http.StatusForbidden)
	case errors.Is(err, identity.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Basic realm="Warden"`)
		http.Error(w, "warden: unknown, malformed or expired Warden token", http.StatusUnauthorized)
	default:
		p.log().Error("git: authenticate", "err", err)
		http.Error(w, "warden: the session store is unavailable", http.StatusServiceUnavailable)
	}
}

// refuse answers a refused fetch: git prints the body after the status.
func refuse(w http.ResponseWriter, ref *pipeline.Refusal) {
	if ref.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Warden"`)
	}
	http.Error(w, "warden: "+ref.Message, ref.Status)
}

// forward sends the request to the upstream with Warden's credential and
// streams the answer back; it returns the answer's status and the bytes of
// the request body sent (0 on failure to reach the upstream).
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, rt route, up Upstream, body io.Reader) (int, int64) {
	target := strings.TrimRight(up.URL, "/") + "/" + rt.repo + ".git"
	if rt.refs {
		target += "/info/refs?service=" + url.QueryEscape(rt.service)
	} else {
		target += "/" + rt.service
	}
	counted := &countingReader{r: body}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, counted)
	if err != nil {
		http.Error(w, "warden: bad upstream URL", http.StatusBadGateway)
		return 0, 0
	}
	switch {
	case r.Method == http.MethodGet:
		req.Body, req.ContentLength = http.NoBody, 0
	default:
		// The body as the client sent it (a push's commands are read
		// already, and sent first): of its length, or streamed in chunks.
		req.ContentLength = r.ContentLength
	}
	for _, h := range []string{"Content-Type", "Accept", "Content-Encoding", "Git-Protocol", "User-Agent"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	if up.Username != "" || up.Password != "" {
		req.SetBasicAuth(up.Username, up.Password)
	}
	resp, err := p.client().Do(req)
	if err != nil {
		p.log().Error("git: reach the upstream", "host", rt.host, "repo", rt.repo, "err", scrub(err, up.Password))
		http.Error(w, "warden: the upstream "+rt.host+" is unreachable", http.StatusBadGateway)
		return 0, counted.n
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Cache-Control", "Content-Encoding", "Expires", "Pragma"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		// Warden's own credential was refused: not the agent's to retry.
		p.log().Error("git: the upstream refused Warden's credential", "host", rt.host, "repo", rt.repo, "status", resp.StatusCode)
		http.Error(w, fmt.Sprintf("warden: %s refused Warden's credential for %s (HTTP %d)", rt.host, rt.repo, resp.StatusCode), http.StatusBadGateway)
		return resp.StatusCode, counted.n
	}
	w.WriteHeader(resp.StatusCode)
	var dst io.Writer = flushWriter{w}
	limiter := p.answerLimiter(r, rt, resp.StatusCode, dst)
	if limiter != nil {
		dst = limiter
	}
	_, err = io.Copy(dst, resp.Body)
	if err == nil && limiter != nil {
		err = limiter.finish()
	}
	if err != nil {
		if limiter != nil && limiter.cut != "" {
			p.log().Warn("git: a fetch's answer was ended at its bound", "host", rt.host, "repo", rt.repo, "bytes", limiter.sent, "why", limiter.cut)
		} else {
			p.log().Warn("git: copy the upstream's answer", "host", rt.host, "repo", rt.repo, "err", err)
		}
	}
	return resp.StatusCode, counted.n
}

// answerLimiter bounds the answer of a fetch (git-upload-pack) by
// MaxAnswer and the request's deadline; nil when it has neither.
func (p *Proxy) answerLimiter(r *http.Request, rt route, status int, w io.Writer) *answerLimiter {
	if rt.service != "git-upload-pack" || rt.refs || status != http.StatusOK {
		return nil
	}
	deadline, hasDeadline := r.Context().Deadline()
	if p.MaxAnswer.Bytes <= 0 && !hasDeadline {
		return nil
	}
	return &answerLimiter{w: w, max: p.MaxAnswer.Bytes, deadline: deadline, now: time.Now,
		sizeWhy: p.MaxAnswer.sizeMessage(), timeWhy: timeMessage(time.Until(deadline))}
}

// receivePack decides each ref a push updates, and forwards the push only
// if every one is allowed; otherwise git is told, ref by ref, and the pack
// never reaches the upstream.
func (p *Proxy) receivePack(w http.ResponseWriter, r *http.Request, rt route, up Upstream, tok string) {
	start := time.Now()
	if _, err := p.Pipeline.Auth.Authenticate(r.Context(), tok); err != nil {
		p.Pipeline.Refuse(r.Context(), pipeline.Call{Token: tok, Request: policy.Request{Action: "git:push", Resource: rt.resource()}},
			&pipeline.Refusal{Status: http.StatusUnauthorized, Message: "the push's token is refused: " + err.Error()})
		p.refuseAuth(w, err)
		return
	}
	if r.Header.Get("Content-Encoding") != "" {
		http.Error(w, "warden: a compressed push is not supported", http.StatusUnsupportedMediaType)
		return
	}
	push, err := ReadPush(r.Body)
	if err != nil {
		ref := &pipeline.Refusal{Status: http.StatusBadRequest, Message: "the push is malformed: " + err.Error()}
		p.Pipeline.Refuse(r.Context(), pipeline.Call{Token: tok, Request: policy.Request{Action: "git:push", Resource: rt.resource()}}, ref)
		http.Error(w, "warden: "+ref.Message, http.StatusBadRequest)
		return
	}
	if len(push.Commands) == 0 {
		// git's probe before a large push: nothing to decide, nothing
		// updated; the upstream answers it, unless the push it announces
		// is over the limit.
		if p.overLimit(r) {
			ref := &pipeline.Refusal{Status: http.StatusRequestEntityTooLarge, Message: p.MaxPush.pushMessage()}
			p.Pipeline.Refuse(r.Context(), pipeline.Call{Token: tok, Request: policy.Request{Action: "git:push", Resource: rt.resource()}}, ref)
			http.Error(w, "warden: "+ref.Message, ref.Status)
			return
		}
		p.forward(w, r, rt, up, io.MultiReader(bytes.NewReader(push.Raw), r.Body))
		return
	}
	pushID := "push-" + audit.NewID()[:16]
	var refused []refusedRef
	var sess identity.Session
	for _, c := range push.Commands {
		action := "git:push"
		if c.Op() == "delete" {
			action = "git:delete-ref"
		}
		v := p.Pipeline.Decide(r.Context(), pipeline.Call{Token: tok, Ref: pushID,
			Request: policy.Request{Action: action, Resource: rt.resource() + ":" + c.Ref, Attributes: map[string]any{"op": c.Op()}},
			Args:    map[string]string{"ref": c.Ref, "old": c.Old, "new": c.New, "op": c.Op()}})
		if !v.Decided {
			// A broken dependency or a bad token: no decision for any ref.
			drain(r.Body)
			refuse(w, v.Refusal)
			return
		}
		sess = v.Session
		if !v.Allowed {
			refused = append(refused, refusedRef{c.Ref, v.Decision.Rule, v.Refusal})
		}
	}
	if len(refused) > 0 {
		drain(r.Body)
		p.answerRefused(w, push, refused)
		p.outcome(r.Context(), sess, pushID, rt, push, "refused", http.StatusOK, 0, time.Since(start))
		return
	}
	status, sent := p.forward(w, r, rt, up, io.MultiReader(bytes.NewReader(push.Raw), r.Body))
	result := "forwarded"
	if status == 0 || status >= 400 {
		result = "error"
	}
	p.outcome(r.Context(), sess, pushID, rt, push, result, status, sent, time.Since(start))
}

// overLimit reports whether a probe announces a push over the limit: git
// probes before a request larger than its post buffer, and the client
// says its buffer is at or above the limit.
func (p *Proxy) overLimit(r *http.Request) bool {
	if p.MaxPush.Bytes <= 0 {
		return false
	}
	n, err := strconv.ParseInt(r.Header.Get(PostBufferHeader), 10, 64)
	return err == nil && n >= p.MaxPush.Bytes
}

func (l Limit) pushMessage() string {
	return fmt.Sprintf("the push is larger than this git remote's limit of %d bytes (%s): push fewer commits at a time, or push through a Warden that runs as warden serve, which takes pushes of any size",
		l.Bytes, l.Why)
}

// refusedRef is a ref of a push that was not allowed, and why.
type refusedRef struct {
	ref, rule string
	why       *pipeline.Refusal
}

// message is what git prints for a refused ref: "warden: push to
// refs/heads/main refused by rule no-main-push", or the pending approval.
func (rr refusedRef) message() string {
	switch {
	case rr.why.Approval != "":
		return fmt.Sprintf("warden: push to %s waits for approval %s: %s; push again once it is approved", rr.ref, rr.why.Approval, rr.why.Message)
	case rr.rule != "":
		return fmt.Sprintf("warden: push to %s refused by rule %s", rr.ref, rr.rule)
	}
	return fmt.Sprintf("warden: push to %s refused: %s", rr.ref, rr.why.Message)
}

// answerRefused answers a refused push as git-receive-pack would: each
// refusal as a message git prints ("remote: warden: …", on side band 2
// when the client asked for one), and a report that rejects every ref.
func (p *Proxy) answerRefused(w http.ResponseWriter, push *Push, refused []refusedRef) {
	why := map[string]string{}
	for _, rr := range refused {
		why[rr.ref] = rr.message()
	}
	var report bytes.Buffer
	report.WriteString(pkt("unpack ok\n"))
	for _, c := range push.Commands {
		reason := "warden refused the whole push"
		if m, ok := why[c.Ref]; ok {
			reason = strings.TrimPrefix(m, "warden: ")
		}
		report.WriteString(pkt("ng " + c.Ref + " " + oneLine(reason) + "\n"))
	}
	report.WriteString("0000")
	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if !push.HasCapability("side-band-64k") && !push.HasCapability("side-band") {
		_, _ = w.Write(report.Bytes())
		return
	}
	var out bytes.Buffer
	for _, rr := range refused {
		out.WriteString(pkt("\x02" + oneLine(rr.message()) + "\n"))
	}
	for data := report.Bytes(); len(data) > 0; {
		n := min(len(data), 999-5) // side-band: 1000-byte packets
		out.WriteString(pkt("\x01" + string(data[:n])))
		data = data[n:]
	}
	out.WriteString("0000")
	_, _ = w.Write(out.Bytes())
}

// outcome records what came of a push: its ref updates, refused,
// forwarded (and the upstream's status) or error, the bytes sent upstream
// and the time.
func (p *Proxy) outcome(ctx context.Context, sess identity.Session, ref string, rt route, push *Push, status string, code int, sent int64, took time.Duration) {
	refs := make([]map[string]string, len(push.Commands))
	for i, c := range push.Commands {
		refs[i] = map[string]string{"ref": c.Ref, "old": c.Old, "new": c.New, "op": c.Op()}
	}
	rec := audit.Record{Code: audit.GitPush, Ref: ref, Kind: "git", Action: "git:push", Resource: rt.resource(), Status: status,
		DurationMS: took.Milliseconds(), Args: p.Pipeline.Redactor.JSON(map[string]any{"refs": refs, "upstream_status": code, "bytes": sent})}
	if err := p.Pipeline.Outcome(ctx, sess, rec); err != nil {
		p.log().Error("git: record a push's outcome", "push", ref, "err", err)
	}
}

// pkt is s as a pkt-line.
func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ", "\x00", " ").Replace(s)
}

// drain reads what is left of a refused push (bounded), so that git, still
// sending, reads the answer instead of a broken pipe.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, maxDrain)) }

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// flushWriter flushes after every write, so that git sees the upstream's
// progress as it comes.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// scrub removes secret from err's text.
func scrub(err error, secret string) error {
	if secret == "" || err == nil || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "[REDACTED]"))
}
