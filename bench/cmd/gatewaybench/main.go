// Command gatewaybench measures what Warden's LLM gateway adds to a model
// call, against a bare httputil.ReverseProxy and nginx in front of the same
// upstream, in one run, and prints the figures as markdown tables.
// Progress goes to stderr.
//
// It starts four processes on free 127.0.0.1 ports: the stand-in upstream
// (this program re-executed; gatewaybench.StandIn, the Anthropic Messages
// API with fixed answers), `warden serve` (built from the module bench
// replaces, or --warden) in a temporary data directory with a policy that
// allows the model under a budget and a rate limit and routes claude-* to
// the stand-in, a bare httputil.ReverseProxy (this program re-executed),
// and nginx as a reverse proxy (installed with apt-get if missing and
// allowed; its row is reported missing otherwise). It logs an agent in to
// warden, then measures, against the stand-in directly and through each:
//
//   - non-streamed calls, open loop at --rate for --duration per target,
//     in halves ordered A B C D D C B A, latency from the scheduled send;
//   - streamed calls at --ttfb-rate: the time to the first byte of the SSE
//     answer;
//   - one stream whose events are --spacing apart: when each arrives;
//   - --streams concurrent streams through warden, living --stream-life:
//     warden's resident memory while they run.
//
// Every answer is compared with the stand-in's bytes, and warden's audit
// trail is read back: one decision and one llm.usage record with the
// stand-in's exact tokens per call.
//
// Usage, from bench/:
//
//	go run ./cmd/gatewaybench [--duration 20s] [--rate 1000] [--streams 1000] [--warden PATH] [--nginx PATH|off]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wardenhq/warden/bench/gatewaybench"
	"github.com/wardenhq/warden/bench/hookbench"
	"github.com/wardenhq/warden/bench/internal/benchmain"
	"github.com/wardenhq/warden/bench/internal/child"
)

func main() {
	if ok, err := runServer(os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, "gatewaybench server:", err)
			os.Exit(1)
		}
		return
	}
	cfg := defaultConfig()
	fs := benchmain.FlagSet("gatewaybench")
	cfg.register(fs)
	benchmain.Run(fs, func(ctx context.Context, stdout, stderr io.Writer) error {
		return run(ctx, cfg, stdout, stderr)
	})
}

// config is what a run is made with.
type config struct {
	warden       string
	nginx        string
	installNginx bool
	budget       bool
	rate         float64
	duration     time.Duration
	warmup       time.Duration
	maxInFlight  int
	bodyBytes    int
	timeout      time.Duration
	ttfbRate     float64
	ttfbDuration time.Duration
	ttfbDeltas   int
	ttfbDelay    time.Duration
	spacing      time.Duration
	spacingCount int
	streams      int
	streamLife   time.Duration
	streamRamp   time.Duration
	pause        time.Duration
}

func defaultConfig() config {
	return config{installNginx: true, budget: true, rate: 1000, duration: 20 * time.Second, warmup: 2 * time.Second, maxInFlight: 256,
		bodyBytes: 1024, timeout: 10 * time.Second, ttfbRate: 200, ttfbDuration: 10 * time.Second, ttfbDeltas: 10,
		ttfbDelay: 5 * time.Millisecond, spacing: 100 * time.Millisecond, spacingCount: 8,
		streams: 1000, streamLife: 15 * time.Second, streamRamp: 3 * time.Second, pause: 500 * time.Millisecond}
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.warden, "warden", c.warden, "warden binary to run (default: build cmd/warden of the replaced module)")
	fs.StringVar(&c.nginx, "nginx", c.nginx, `nginx binary to run (default: nginx on PATH or /usr/sbin/nginx; "off": no nginx row)`)
	fs.BoolVar(&c.installNginx, "install-nginx", c.installNginx, "install the Debian package nginx with apt-get if nginx is missing (as root)")
	fs.BoolVar(&c.budget, "budget", c.budget, "give warden's policy a budget and a rate limit, so that each call is reserved and settled (false: to see what they cost)")
	fs.Float64Var(&c.rate, "rate", c.rate, "requests per second of the non-streamed constant-rate runs")
	fs.DurationVar(&c.duration, "duration", c.duration, "length of the non-streamed constant-rate run against each target")
	fs.DurationVar(&c.warmup, "warmup", c.warmup, "constant-rate warm-up against each target, not measured")
	fs.IntVar(&c.maxInFlight, "max-in-flight", c.maxInFlight, "bound on requests in flight in the constant-rate runs")
	fs.IntVar(&c.bodyBytes, "body-bytes", c.bodyBytes, "size of each request body")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "timeout of one request of the constant-rate runs")
	fs.Float64Var(&c.ttfbRate, "ttfb-rate", c.ttfbRate, "streams per second of the time-to-first-byte runs")
	fs.DurationVar(&c.ttfbDuration, "ttfb-duration", c.ttfbDuration, "length of the time-to-first-byte run against each target")
	fs.IntVar(&c.ttfbDeltas, "ttfb-deltas", c.ttfbDeltas, "content_block_delta events of each stream of the time-to-first-byte runs")
	fs.DurationVar(&c.ttfbDelay, "ttfb-delay", c.ttfbDelay, "pause between events of each stream of the time-to-first-byte runs")
	fs.DurationVar(&c.spacing, "spacing", c.spacing, "pause between events of the stream that shows whether events are batched")
	fs.IntVar(&c.spacingCount, "spacing-deltas", c.spacingCount, "content_block_delta events of that stream")
	fs.IntVar(&c.streams, "streams", c.streams, "concurrent streams through warden (0: skip)")
	fs.DurationVar(&c.streamLife, "stream-life", c.streamLife, "how long each of the concurrent streams lasts")
	fs.DurationVar(&c.streamRamp, "stream-ramp", c.streamRamp, "the concurrent streams are opened evenly over this time")
	fs.DurationVar(&c.pause, "pause", c.pause, "pause between two runs, so that one's stragglers do not meet the next")
}

func (c config) check() error {
	switch {
	case !(c.rate > 0) || !(c.ttfbRate > 0):
		return fmt.Errorf("--rate %v, --ttfb-rate %v: want positive rates", c.rate, c.ttfbRate)
	case c.duration < 2*time.Millisecond || c.ttfbDuration < 2*time.Millisecond:
		return fmt.Errorf("--duration %v, --ttfb-duration %v: want at least 2ms (each is run in halves)", c.duration, c.ttfbDuration)
	case c.warmup < 0:
		return fmt.Errorf("--warmup %v: want zero or more", c.warmup)
	case c.maxInFlight < 1:
		return fmt.Errorf("--max-in-flight %d: want at least 1", c.maxInFlight)
	case c.bodyBytes < 200 || c.bodyBytes > 1<<20:
		return fmt.Errorf("--body-bytes %d: want 200 to 1048576", c.bodyBytes)
	case c.timeout <= 0:
		return fmt.Errorf("--timeout %v: want a positive duration", c.timeout)
	case c.ttfbDeltas < 0 || c.ttfbDeltas > gatewaybench.MaxDeltas || c.spacingCount < 1 || c.spacingCount > gatewaybench.MaxDeltas:
		return fmt.Errorf("--ttfb-deltas %d, --spacing-deltas %d: want 0 (1) to %d", c.ttfbDeltas, c.spacingCount, gatewaybench.MaxDeltas)
	case c.ttfbDelay < 0 || c.ttfbDelay > time.Second || c.spacing <= 0 || c.spacing > 10*time.Second:
		return fmt.Errorf("--ttfb-delay %v, --spacing %v: want up to 1s and 10s", c.ttfbDelay, c.spacing)
	case c.streams < 0 || c.streams > 20_000:
		return fmt.Errorf("--streams %d: want 0 to 20000", c.streams)
	case c.pause < 0 || c.pause > time.Minute:
		return fmt.Errorf("--pause %v: want 0 to 1m", c.pause)
	case c.streams > 0 && (c.streamLife < 100*time.Millisecond || c.streamLife > 10*time.Minute || c.streamRamp < 0 || c.streamRamp > c.streamLife):
		return fmt.Errorf("--stream-life %v, --stream-ramp %v: want a life of 100ms to 10m and a ramp no longer", c.streamLife, c.streamRamp)
	}
	return nil
}

// streamDeltas is the content_block_delta events of each of the
// concurrent streams; the pause between events makes the stream last
// --stream-life.
const streamDeltas = 28

// maxTokens is the requests' max_tokens: what warden reserves for.
const maxTokens = 1024

// Run labels: the X-Claude-Code-Session-Id of each run's calls, by which
// warden's audit trail is counted.
const (
	labelProbe   = "gatewaybench-probe"
	labelWarmup  = "gatewaybench-warmup"
	labelRate1   = "gatewaybench-rate-1"
	labelRate2   = "gatewaybench-rate-2"
	labelTTFB1   = "gatewaybench-ttfb-1"
	labelTTFB2   = "gatewaybench-ttfb-2"
	labelSpacing = "gatewaybench-spacing"
	labelStreams = "gatewaybench-streams"
)

// Target names.
const (
	direct  = "direct"
	wardenT = "warden"
	proxyT  = "reverseproxy"
	nginxT  = "nginx"
)

// target is one way to the stand-in: directly, or through a proxy.
type target struct {
	name string
	url  string // base URL
	// proc is the process whose CPU time is counted: the proxy's, or the
	// stand-in's for direct calls.
	proc *child.Process
	// missing says why the target was not measured; empty if it was.
	missing string
	// Clients for non-streamed and streamed calls, each answer checked
	// against the stand-in's bytes; kept across runs.
	json, sse           *http.Client
	jsonCheck, sseCheck *gatewaybench.Checker
}

// measured is one constant-rate run against one target.
type measured struct {
	target  string
	label   string
	result  *hookbench.Result
	checked *gatewaybench.Checked
	cpu     time.Duration // CPU time the target process used during the run
}

// spaced is the stream whose events are --spacing apart, through one
// target.
type spaced struct {
	target   string
	arrivals []time.Duration
	equal    bool
	err      error
}

// streamsRun is the concurrent streams through warden.
type streamsRun struct {
	result                    *gatewaybench.StreamsResult
	rssBefore, rssPeak, vmHWM int64
	rssAfter                  int64
	samples                   int
	delay                     time.Duration
}

// runner makes the runs with a run's settings and session.
type runner struct {
	cfg      config
	progress io.Writer
	token    string
	jsonBody []byte
	sseBody  []byte
}

// header returns the headers of the calls of the run labelled label;
// deltas and delay shape a streamed answer, deltas < 0 for a non-streamed
// call.
func (r *runner) header(label string, deltas int, delay time.Duration) http.Header {
	h := http.Header{"Content-Type": {"application/json"}, "Anthropic-Version": {"2023-06-01"},
		"Authorization": {"Bearer " + r.token}, "X-Claude-Code-Session-Id": {label}}
	if deltas >= 0 {
		h.Set(gatewaybench.HeaderDeltas, strconv.Itoa(deltas))
		h.Set(gatewaybench.HeaderDelay, delay.String())
	}
	return h
}

func run(ctx context.Context, cfg config, out, progress io.Writer) (err error) {
	if err := cfg.check(); err != nil {
		return err
	}
	start := time.Now()
	rep := &report{cfg: cfg, started: start, loadBefore: child.LoadAverage(), counts: map[string]int{}}
	// Warden holds two descriptors per stream (agent and upstream).
	if err := raiseOpenFiles(uint64(2*cfg.streams + 1024)); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gatewaybench-")
	if err != nil {
		return fmt.Errorf("create a temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	bin := cfg.warden
	rep.wardenBin = bin
	if bin == "" {
		fmt.Fprintln(progress, "building warden")
		var source string
		if bin, source, err = child.BuildWarden(ctx, dir); err != nil {
			return err
		}
		rep.wardenBin = "cmd/warden built from " + source
	}
	fmt.Fprintln(progress, "measuring fsync in the data directory's file system")
	if rep.fsync, err = hookbench.MeasureFsync(dir, 200, 5*time.Second); err != nil {
		return err
	}

	// The processes, each stopped when run returns.
	key := providerKey()
	standIn, standAddr, err := startSelf(ctx, "stand-in", dir, standInFlag, "--addr", "127.0.0.1:0", "--key", key)
	if err != nil {
		return err
	}
	defer stopProc(standIn, progress, &err)
	fmt.Fprintf(progress, "stand-in upstream on http://%s (pid %d)\n", standAddr, standIn.PID())
	w, err := startWarden(ctx, bin, dir, standAddr, key, cfg.budget)
	if err != nil {
		return err
	}
	defer stopProc(w.Process, progress, &err)
	if err := w.Login(ctx, benchProject, benchAgent); err != nil {
		return err
	}
	fmt.Fprintf(progress, "warden on %s (pid %d)\n", w.Endpoint, w.PID())
	rp, rpAddr, err := startSelf(ctx, "reverse proxy", dir, proxyFlag, "--addr", "127.0.0.1:0", "--upstream", "http://"+standAddr)
	if err != nil {
		return err
	}
	defer stopProc(rp, progress, &err)
	fmt.Fprintf(progress, "httputil.ReverseProxy on http://%s (pid %d)\n", rpAddr, rp.PID())
	targets := []*target{
		{name: direct, url: "http://" + standAddr, proc: standIn},
		{name: wardenT, url: w.Endpoint, proc: w.Process},
		{name: proxyT, url: "http://" + rpAddr, proc: rp},
		{name: nginxT},
	}
	if np, reason := startNginxTarget(ctx, cfg, dir, standAddr, targets[3], rep, progress); np != nil {
		defer stopProc(np, progress, &err)
	} else {
		targets[3].missing = reason
		fmt.Fprintf(progress, "no nginx row: %s\n", reason)
	}
	rep.targets = targets

	rn := &runner{cfg: cfg, progress: progress, token: w.SessionToken,
		jsonBody: gatewaybench.RequestBody(maxTokens, false, cfg.bodyBytes), sseBody: gatewaybench.RequestBody(maxTokens, true, cfg.bodyBytes)}
	active := slices.DeleteFunc(slices.Clone(targets), func(t *target) bool { return t.missing != "" })
	for _, t := range active {
		t.jsonCheck = &gatewaybench.Checker{Want: gatewaybench.Message()}
		t.json = checkedClient(cfg.maxInFlight, cfg.timeout, t.jsonCheck)
		t.sseCheck = &gatewaybench.Checker{Want: gatewaybench.StreamBytes(cfg.ttfbDeltas)}
		t.sse = checkedClient(cfg.maxInFlight, cfg.timeout, t.sseCheck)
		defer t.json.CloseIdleConnections()
		defer t.sse.CloseIdleConnections()
		if err := rn.probe(ctx, t); err != nil {
			return err
		}
		if t.name == wardenT {
			rep.counts[labelProbe] += 2
		}
	}
	count := func(m *measured) {
		if m.target == wardenT {
			rep.counts[m.label] += m.result.OK
		}
	}
	abba := append(slices.Clone(active), reversed(active)...)

	// halves runs a warm-up against each target, then the measured halves
	// in the order A B C D D C B A.
	halves := func(stream bool, rate float64, warmup, d time.Duration, first, second string) ([]*measured, error) {
		for _, t := range active {
			if warmup > 0 {
				m, err := rn.constantRate(ctx, t, stream, labelWarmup, rate, warmup)
				if err != nil {
					return nil, err
				}
				count(m)
				time.Sleep(cfg.pause)
			}
		}
		var out []*measured
		for i, t := range abba {
			label, length := first, d/2
			if i >= len(active) {
				label, length = second, d-d/2
			}
			m, err := rn.constantRate(ctx, t, stream, label, rate, length)
			if err != nil {
				return nil, err
			}
			count(m)
			out = append(out, m)
			time.Sleep(cfg.pause)
		}
		return out, nil
	}
	// Non-streamed calls, then streamed calls (time to first byte).
	if rep.json, err = halves(false, cfg.rate, cfg.warmup, cfg.duration, labelRate1, labelRate2); err != nil {
		return err
	}
	if rep.sse, err = halves(true, cfg.ttfbRate, cfg.warmup/2, cfg.ttfbDuration, labelTTFB1, labelTTFB2); err != nil {
		return err
	}

	// One stream with events spaced apart, through each target.
	for _, t := range active {
		s := rn.spacedStream(ctx, t)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if t.name == wardenT && s.err == nil {
			rep.counts[labelSpacing]++
		}
		rep.spaced = append(rep.spaced, s)
	}

	// Many concurrent streams through warden.
	if cfg.streams > 0 {
		time.Sleep(cfg.pause)
		if rep.streams, err = rn.concurrentStreams(ctx, targets[1], w); err != nil {
			return err
		}
		rep.counts[labelStreams] += rep.streams.result.OK
	}

	time.Sleep(cfg.pause)
	fmt.Fprintln(progress, "reading warden's audit trail")
	if rep.trail, rep.trailTotal, rep.orphans, err = w.countTrail(ctx); err != nil {
		return err
	}
	rep.loadAfter = child.LoadAverage()
	rep.elapsed = time.Since(start)
	rep.write(out)
	fmt.Fprintf(progress, "done in %s\n", rep.elapsed.Round(time.Second))
	if problems := rep.problems(); len(problems) > 0 {
		return fmt.Errorf("the run is not clean: %w", errors.Join(problems...))
	}
	return nil
}

// startNginxTarget finds or installs nginx and starts it in front of the
// stand-in as target t; or says why not.
func startNginxTarget(ctx context.Context, cfg config, dir, standAddr string, t *target, rep *report, progress io.Writer) (*child.Process, string) {
	if cfg.nginx == "off" {
		return nil, "not run (--nginx off)"
	}
	bin, err := findNginx(ctx, cfg, progress)
	if err != nil {
		return nil, err.Error()
	}
	p, addr, err := startNginx(ctx, bin, dir, standAddr)
	if err != nil {
		return nil, fmt.Sprintf("%s did not start: %v", bin, err)
	}
	t.url, t.proc = "http://"+addr, p
	rep.nginxVersion = nginxVersion(bin)
	fmt.Fprintf(progress, "%s on http://%s (pid %d)\n", rep.nginxVersion, addr, p.PID())
	return p, ""
}

func reversed[T any](s []T) []T {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

// checkedClient is a keep-alive client whose answers chk checks.
func checkedClient(conns int, timeout time.Duration, chk *gatewaybench.Checker) *http.Client {
	c := hookbench.NewClient(conns, timeout)
	chk.Base = c.Transport
	c.Transport = chk
	return c
}

// stopProc stops p when run returns, and reports a failure to stop in
// *err unless run already failed.
func stopProc(p *child.Process, progress io.Writer, err *error) {
	if stopErr := p.Stop(10 * time.Second); stopErr != nil {
		fmt.Fprintln(progress, "gatewaybench:", stopErr)
		if *err == nil {
			*err = stopErr
		}
	}
}

// probe makes one non-streamed and one streamed call through t and checks
// that both answers are the stand-in's, byte for byte.
func (r *runner) probe(ctx context.Context, t *target) error {
	for _, stream := range []bool{false, true} {
		client, chk, body, deltas := t.json, t.jsonCheck, r.jsonBody, -1
		if stream {
			client, chk, body, deltas = t.sse, t.sseCheck, r.sseBody, r.cfg.ttfbDeltas
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+"/v1/messages", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header = r.header(labelProbe, deltas, 0)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("probe %s (stream %t): %w", t.name, stream, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got := chk.Take()
		switch {
		case err != nil:
			return fmt.Errorf("probe %s (stream %t): read: %w", t.name, stream, err)
		case resp.StatusCode != http.StatusOK || got.Equal != 1:
			return fmt.Errorf("probe %s (stream %t): HTTP %d, not the stand-in's answer: %s%s", t.name, stream, resp.StatusCode, got.FirstDiff, procTail(t))
		case t.name == wardenT && resp.Header.Get("X-Warden-Call") == "":
			return fmt.Errorf("probe %s (stream %t): no X-Warden-Call header in the answer", t.name, stream)
		}
	}
	return nil
}

func procTail(t *target) string {
	if t.proc == nil {
		return ""
	}
	return t.proc.LogTail()
}

// constantRate runs calls to t at rate for d, open loop.
func (r *runner) constantRate(ctx context.Context, t *target, stream bool, label string, rate float64, d time.Duration) (*measured, error) {
	client, chk, body, deltas := t.json, t.jsonCheck, r.jsonBody, -1
	kind := "non-streamed"
	if stream {
		client, chk, body, deltas, kind = t.sse, t.sseCheck, r.sseBody, r.cfg.ttfbDeltas, "streamed"
	}
	fmt.Fprintf(r.progress, "%s %s: %s calls, %v/s for %v\n", label, t.name, kind, rate, d)
	target := hookbench.Target{URL: t.url + "/v1/messages", Header: r.header(label, deltas, r.cfg.ttfbDelay),
		Body: func(int) []byte { return body }}
	chk.Take()
	m := &measured{target: t.name, label: label}
	cpu0, err := t.proc.CPU()
	if err != nil {
		return nil, err
	}
	m.result, err = hookbench.ConstantRate(ctx, client, target, hookbench.RateConfig{
		PerSecond: rate, Duration: d, MaxInFlight: r.cfg.maxInFlight, Grace: r.cfg.timeout})
	if err != nil {
		return nil, fmt.Errorf("%s against %s: %w", label, t.name, err)
	}
	cpu1, err := t.proc.CPU()
	if err != nil {
		return nil, err
	}
	m.cpu, m.checked = cpu1-cpu0, chk.Take()
	res := m.result
	fmt.Fprintf(r.progress, "  %d answered, %d errors, %d unsent, %d differ; p50 %s, p99 %s, max %s; first byte p50 %s; send lag p99 %s\n",
		res.OK, res.Errors, res.Unsent, m.checked.Differ, ms(res.Latency.Percentile(50)), ms(res.Latency.Percentile(99)), ms(res.Latency.Max()),
		ms(m.checked.FirstByte.Percentile(50)), ms(res.Lag.Percentile(99)))
	return m, nil
}

// spacedStream reads one stream through t whose events are --spacing
// apart, noting when each arrives.
func (r *runner) spacedStream(ctx context.Context, t *target) *spaced {
	s := &spaced{target: t.name}
	fmt.Fprintf(r.progress, "%s %s: one stream, events %v apart\n", labelSpacing, t.name, r.cfg.spacing)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+"/v1/messages", bytes.NewReader(r.sseBody))
	if err != nil {
		s.err = err
		return s
	}
	req.Header = r.header(labelSpacing, r.cfg.spacingCount, r.cfg.spacing)
	client := &http.Client{Timeout: time.Duration(r.cfg.spacingCount+10) * r.cfg.spacing * 3}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		s.err = err
		return s
	}
	defer resp.Body.Close()
	var body []byte
	s.arrivals, body, s.err = gatewaybench.Arrivals(resp.Body, start)
	if s.err == nil && resp.StatusCode != http.StatusOK {
		s.err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	s.equal = string(body) == string(gatewaybench.StreamBytes(r.cfg.spacingCount))
	lo, hi := gapRange(s.arrivals)
	fmt.Fprintf(r.progress, "  %d events, gaps %s to %s, equal %t, error %v\n", len(s.arrivals), lo, hi, s.equal, s.err)
	return s
}

// concurrentStreams holds --streams streams open through warden at once
// and samples warden's resident memory while they run.
func (r *runner) concurrentStreams(ctx context.Context, t *target, w *warden) (*streamsRun, error) {
	cfg := r.cfg
	sr := &streamsRun{delay: cfg.streamLife / time.Duration(gatewaybench.StreamEvents(streamDeltas)-1)}
	fmt.Fprintf(r.progress, "%s %s: %d concurrent streams opened over %v, events %v apart (%v each)\n",
		labelStreams, t.name, cfg.streams, cfg.streamRamp, sr.delay, cfg.streamLife)
	if err := w.ResetPeak(); err != nil {
		fmt.Fprintf(r.progress, "  cannot reset warden's VmHWM (%v): it holds the peak of the whole run\n", err)
	}
	var err error
	if sr.rssBefore, _, err = w.Memory(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _, err := w.Memory(); err == nil {
				sr.rssPeak = max(sr.rssPeak, rss)
				sr.samples++
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	client := hookbench.NewClient(cfg.streams, cfg.streamLife+time.Minute)
	defer client.CloseIdleConnections()
	target := hookbench.Target{URL: t.url + "/v1/messages", Header: r.header(labelStreams, streamDeltas, sr.delay),
		Body: func(int) []byte { return r.sseBody }}
	sr.result, err = gatewaybench.Concurrent(ctx, client, target, gatewaybench.StreamsConfig{
		Streams: cfg.streams, Ramp: cfg.streamRamp, Want: gatewaybench.StreamBytes(streamDeltas)})
	close(done)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if sr.rssAfter, sr.vmHWM, err = w.Memory(); err != nil {
		return nil, err
	}
	res := sr.result
	fmt.Fprintf(r.progress, "  %d of %d complete and equal, %d errors, %d differ; at most %d open at once; warden RSS %s before, %s at peak (VmHWM %s)\n",
		res.OK, res.Started, res.Errors, res.Differ, res.PeakOpen, mib(sr.rssBefore), mib(sr.rssPeak), mib(sr.vmHWM))
	return sr, nil
}
