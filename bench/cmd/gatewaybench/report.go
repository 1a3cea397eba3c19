package main

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden/bench/gatewaybench"
	"github.com/wardenhq/warden/bench/hookbench"
	"github.com/wardenhq/warden/shared/textfmt"
)

// The aims.
const (
	aimAddedP99  = time.Millisecond // non-streamed calls at --rate
	aimAddedTTFB = time.Millisecond // streamed calls
	aimRSS       = 200_000_000      // bytes of warden's RSS with --streams open
)

// report is everything a run measured.
type report struct {
	cfg          config
	started      time.Time
	elapsed      time.Duration
	loadBefore   string
	loadAfter    string
	wardenBin    string
	nginxVersion string
	fsync        *hookbench.Histogram
	targets      []*target

	json    []*measured // non-streamed halves, in the order run
	sse     []*measured // streamed halves, in the order run
	spaced  []*spaced
	streams *streamsRun // nil if --streams 0

	counts     map[string]int // calls warden answered, by run label
	trail      map[string]*trailCount
	trailTotal int
	orphans    int // llm.usage records without a decision
}

// merged returns the halves of one target merged.
func merged(runs []*measured, target string) *measured {
	m := &measured{target: target, result: &hookbench.Result{}, checked: &gatewaybench.Checked{}}
	for _, h := range runs {
		if h.target != target {
			continue
		}
		m.result.Merge(h.result)
		m.cpu += h.cpu
		c := m.checked
		c.FirstByte.Merge(&h.checked.FirstByte)
		c.Equal, c.Differ, c.Cut = c.Equal+h.checked.Equal, c.Differ+h.checked.Differ, c.Cut+h.checked.Cut
		c.FirstDiff = cmpOr(c.FirstDiff, h.checked.FirstDiff)
	}
	return m
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *report) target(name string) *target {
	for _, t := range r.targets {
		if t.name == name {
			return t
		}
	}
	return nil
}

// added returns what target adds over direct calls at percentile p of
// latency (non-streamed) or of the first byte (streamed).
func added(runs []*measured, target string, p float64, firstByte bool) time.Duration {
	pick := func(m *measured) time.Duration {
		if firstByte {
			return m.checked.FirstByte.Percentile(p)
		}
		return m.result.Latency.Percentile(p)
	}
	return pick(merged(runs, target)) - pick(merged(runs, direct))
}

// spacedOK reports whether a stream's events arrived one by one, each
// about --spacing after the one before.
func (r *report) spacedOK(s *spaced) bool {
	if s.err != nil || !s.equal || len(s.arrivals) != gatewaybench.StreamEvents(r.cfg.spacingCount) {
		return false
	}
	for _, g := range gatewaybench.Gaps(s.arrivals) {
		if g < r.cfg.spacing/2 || g > r.cfg.spacing*3/2 {
			return false
		}
	}
	return true
}

// trailProblems compares warden's audit trail with the calls it answered.
func (r *report) trailProblems() []error {
	var errs []error
	for _, l := range slices.Sorted(maps.Keys(r.counts)) {
		want := r.counts[l]
		c := r.trail[l]
		if c == nil {
			c = &trailCount{}
		}
		switch {
		case c.decisions != want:
			errs = append(errs, fmt.Errorf("run %s: %d allow decisions for %d calls answered", l, c.decisions, want))
		case c.usage != c.decisions:
			errs = append(errs, fmt.Errorf("run %s: %d llm.usage records for %d decisions", l, c.usage, c.decisions))
		case c.usageOK != c.usage:
			errs = append(errs, fmt.Errorf("run %s: %d of %d llm.usage records are not status ok with the stand-in's tokens, e.g. %s", l, c.usage-c.usageOK, c.usage, c.firstBad))
		}
		for code, n := range c.others {
			errs = append(errs, fmt.Errorf("run %s: %d %s records", l, n, code))
		}
	}
	for _, l := range slices.Sorted(maps.Keys(r.trail)) {
		if _, ok := r.counts[l]; !ok {
			errs = append(errs, fmt.Errorf("%d decisions of an unknown run %q", r.trail[l].decisions, l))
		}
	}
	if r.orphans > 0 {
		errs = append(errs, fmt.Errorf("%d llm.usage records without a decision", r.orphans))
	}
	return errs
}

// problems lists what makes the run's figures unreliable: failed, unsent
// or wrong answers, and an audit trail that does not match the calls.
func (r *report) problems() []error {
	var errs []error
	for _, m := range append(slices.Clone(r.json), r.sse...) {
		res, c := m.result, m.checked
		if res.Errors > 0 || res.Unsent > 0 || c.Differ > 0 || c.Cut > 0 {
			errs = append(errs, fmt.Errorf("run %s against %s: %d errors (%s), %d unsent, %d answers not the stand-in's (%s), %d cut",
				m.label, m.target, res.Errors, res.FirstError, res.Unsent, c.Differ, c.FirstDiff, c.Cut))
		}
	}
	for _, s := range r.spaced {
		if s.err != nil || !s.equal {
			errs = append(errs, fmt.Errorf("spaced stream through %s: error %v, answer equal to the stand-in's: %t", s.target, s.err, s.equal))
		}
	}
	if s := r.streams; s != nil && (s.result.Errors > 0 || s.result.Differ > 0 || s.result.OK != r.cfg.streams) {
		errs = append(errs, fmt.Errorf("concurrent streams: %d of %d complete and equal, %d errors (%s), %d differ",
			s.result.OK, r.cfg.streams, s.result.Errors, s.result.FirstError, s.result.Differ))
	}
	return append(errs, r.trailProblems()...)
}

// title names a target in the tables.
func (r *report) title(name string) string {
	switch name {
	case direct:
		return "direct to the stand-in"
	case wardenT:
		if !r.cfg.budget {
			return "**warden** (auth, policy, durable audit; no budget)"
		}
		return "**warden** (auth, policy, budget, durable audit)"
	case proxyT:
		return "httputil.ReverseProxy (bare)"
	}
	return name
}

func (r *report) write(w io.Writer) {
	cfg := r.cfg
	fmt.Fprintf(w, "## LLM gateway: warden against httputil.ReverseProxy and nginx, in front of the same upstream\n\n")
	nginx := r.nginxVersion
	if nginx == "" {
		nginx = "no nginx"
	}
	fmt.Fprintf(w, "%s, %s/%s, %d CPUs, GOMAXPROCS=%d; %s; load average %s before, %s after; %s; run took %s.\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), nginx,
		r.loadBefore, r.loadAfter, r.started.UTC().Format("2006-01-02 15:04 MST"), r.elapsed.Round(time.Second))
	if !cfg.budget {
		fmt.Fprintf(w, "**Warden ran without a budget or a rate limit (--budget=false): no reservation, no settlement.**\n\n")
	}

	fmt.Fprintf(w, "### Non-streamed calls: %s calls/s for %s against each target\n\n", group(int(cfg.rate)), cfg.duration)
	fmt.Fprintf(w, "%s-byte requests, %s-byte answers. Latency from the scheduled send to the end of the answer; *added* is the target's percentile minus the direct calls'.\n\n",
		group(cfg.bodyBytes), group(gatewaybench.MessageBytes))
	fmt.Fprintf(w, "| target | answered | errors | p50 | p90 | p99 | max | added p50 | added p90 | added p99 | CPU/call | answers equal to the stand-in's |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.targets {
		if t.missing != "" {
			fmt.Fprintf(w, "| %s | missing: %s | | | | | | | | | | |\n", r.title(t.name), oneLine(t.missing))
			continue
		}
		m := merged(r.json, t.name)
		res := m.result
		add := func(p float64) string {
			if t.name == direct {
				return "—"
			}
			return signedMS(added(r.json, t.name, p, false))
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.title(t.name), group(res.OK), res.Errors+res.Unsent,
			ms(res.Latency.Percentile(50)), ms(res.Latency.Percentile(90)), ms(res.Latency.Percentile(99)), ms(res.Latency.Max()),
			add(50), add(90), add(99), perCall(m.cpu, res.Sent), equalOf(m.checked))
	}
	wAdd := added(r.json, wardenT, 50, false)
	fmt.Fprintf(w, "\nAdded p50: warden %s", signedMS(wAdd))
	for _, name := range []string{proxyT, nginxT} {
		if t := r.target(name); t.missing == "" {
			fmt.Fprintf(w, ", %s %s", name, signedMS(added(r.json, name, 50, false)))
		}
	}
	fmt.Fprintf(w, ". Warden / httputil.ReverseProxy: %s", ratio(wAdd, added(r.json, proxyT, 50, false)))
	if r.target(nginxT).missing == "" {
		fmt.Fprintf(w, "; warden / nginx: %s", ratio(wAdd, added(r.json, nginxT, 50, false)))
	}
	fmt.Fprintf(w, ".\n\n")

	fmt.Fprintf(w, "### Streamed calls: time to first byte, %s streams/s for %s against each target\n\n", group(int(cfg.ttfbRate)), cfg.ttfbDuration)
	fmt.Fprintf(w, "Each stream is the stand-in's message_start at once, then %d more events %s apart (%s bytes in all). "+
		"First byte: from the send to the first byte of the answer's body (message_start). Whole stream: from the scheduled send to the last byte.\n\n",
		gatewaybench.StreamEvents(cfg.ttfbDeltas)-1, cfg.ttfbDelay, group(len(gatewaybench.StreamBytes(cfg.ttfbDeltas))))
	fmt.Fprintf(w, "| target | streams | errors | first byte p50 | p90 | p99 | max | added p50 | added p99 | whole stream p50 | answers equal to the stand-in's |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.targets {
		if t.missing != "" {
			fmt.Fprintf(w, "| %s | missing | | | | | | | | | |\n", r.title(t.name))
			continue
		}
		m := merged(r.sse, t.name)
		fb := &m.checked.FirstByte
		add := func(p float64) string {
			if t.name == direct {
				return "—"
			}
			return signedMS(added(r.sse, t.name, p, true))
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.title(t.name), group(m.result.OK), m.result.Errors+m.result.Unsent,
			ms(fb.Percentile(50)), ms(fb.Percentile(90)), ms(fb.Percentile(99)), ms(fb.Max()), add(50), add(99),
			ms(m.result.Latency.Percentile(50)), equalOf(m.checked))
	}

	fmt.Fprintf(w, "\n### Streamed calls: events %s apart, one stream through each target\n\n", cfg.spacing)
	fmt.Fprintf(w, "%d events; the gaps are between the arrivals of consecutive events at the client (each event's time is that of the read that completed it, "+
		"so two events passed on together show a gap of 0).\n\n", gatewaybench.StreamEvents(cfg.spacingCount))
	fmt.Fprintf(w, "| target | events received | gap min | gap median | gap max | answer equal to the stand-in's | every event forwarded as it arrived |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.spaced {
		gaps := gatewaybench.Gaps(s.arrivals)
		slices.Sort(gaps)
		lo, med, hi := "-", "-", "-"
		if len(gaps) > 0 {
			lo, med, hi = ms(gaps[0]), ms(gaps[len(gaps)/2]), ms(gaps[len(gaps)-1])
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s |\n", r.title(s.target), len(s.arrivals), lo, med, hi, yes(s.equal), yes(r.spacedOK(s)))
	}

	if s := r.streams; s != nil {
		res := s.result
		fmt.Fprintf(w, "\n### %s concurrent streams through warden\n\n", group(cfg.streams))
		fmt.Fprintf(w, "Opened evenly over %s; each is %d events %s apart (about %s). RSS is warden's VmRSS, sampled every 100 ms while the streams ran (%d samples), "+
			"and its VmHWM (reset before the streams opened).\n\n", cfg.streamRamp, gatewaybench.StreamEvents(streamDeltas), s.delay.Round(time.Millisecond), cfg.streamLife, s.samples)
		fmt.Fprintf(w, "| streams | complete, equal to the stand-in's | errors | most open at once | stream life p50 | max | warden RSS before | peak (sampled) | VmHWM | after |\n")
		fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", group(res.Started), group(res.OK), res.Errors+res.Differ, group(res.PeakOpen),
			secs(res.Life.Percentile(50)), secs(res.Life.Max()), mib(s.rssBefore), mib(s.rssPeak), mib(s.vmHWM), mib(s.rssAfter))
	}

	r.writeAims(w)
	r.writeTrail(w)

	fmt.Fprintf(w, "\n### Each run\n\n")
	fmt.Fprintf(w, "Latency counts from the scheduled send time; send lag is how late the load generator sent; service time counts from the actual send. CPU/call is the target process's (the stand-in's for direct calls).\n\n")
	fmt.Fprintf(w, "| run | target | answered | errors | unsent | p50 | p99 | max | first byte p50 | send lag p99 | service p50 | CPU/call |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range append(slices.Clone(r.json), r.sse...) {
		res := m.result
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", m.label, m.target, group(res.OK), res.Errors, res.Unsent,
			ms(res.Latency.Percentile(50)), ms(res.Latency.Percentile(99)), ms(res.Latency.Max()), ms(m.checked.FirstByte.Percentile(50)),
			ms(res.Lag.Percentile(99)), ms(res.Service.Percentile(50)), perCall(m.cpu, res.Sent))
	}
	fmt.Fprintf(w, "\n- fsync after a 4 KiB append in the data directory's file system (%d times): p50 %s, p99 %s, max %s; warden commits each audit record, budget reservation and settlement before going on.\n",
		r.fsync.Count(), ms(r.fsync.Percentile(50)), ms(r.fsync.Percentile(99)), ms(r.fsync.Max()))
	r.writeMethod(w)
}

func (r *report) writeAims(w io.Writer) {
	cfg := r.cfg
	ward := merged(r.json, wardenT)
	fmt.Fprintf(w, "\n### Aims\n\n| aim | measured | met |\n|---|---|---|\n")
	wAdd, pAdd := added(r.json, wardenT, 50, false), added(r.json, proxyT, 50, false)
	fmt.Fprintf(w, "| non-streamed, %s/s: added p50 no more than a bare httputil.ReverseProxy's in the same run | warden %s, ReverseProxy %s (%s) | %s |\n",
		group(int(cfg.rate)), signedMS(wAdd), signedMS(pAdd), ratio(wAdd, pAdd), yes(wAdd <= pAdd))
	wAdd99 := added(r.json, wardenT, 99, false)
	fmt.Fprintf(w, "| non-streamed, %s/s: added p99 at most %s | %s | %s |\n", group(int(cfg.rate)), ms(aimAddedP99), signedMS(wAdd99), yes(wAdd99 <= aimAddedP99))
	bad := ward.result.Errors + ward.result.Unsent + ward.checked.Differ + ward.checked.Cut
	fmt.Fprintf(w, "| non-streamed, %s/s: no errors | %d errors, %d unsent, %d answers not the stand-in's of %s | %s |\n", group(int(cfg.rate)),
		ward.result.Errors, ward.result.Unsent, ward.checked.Differ, group(ward.result.Sent), yes(bad == 0 && ward.result.Sent > 0))
	if t := r.target(nginxT); t.missing == "" {
		fmt.Fprintf(w, "| non-streamed: ratio of warden's added p50 to nginx's (reported) | warden %s, nginx %s: %s | — |\n",
			signedMS(wAdd), signedMS(added(r.json, nginxT, 50, false)), ratio(wAdd, added(r.json, nginxT, 50, false)))
	} else {
		fmt.Fprintf(w, "| non-streamed: ratio of warden's added p50 to nginx's (reported) | nginx missing: %s | — |\n", oneLine(t.missing))
	}
	for _, p := range []float64{50, 99} {
		a := added(r.sse, wardenT, p, true)
		fmt.Fprintf(w, "| streamed: time to first byte added at p%.0f at most %s | %s | %s |\n", p, ms(aimAddedTTFB), signedMS(a), yes(a <= aimAddedTTFB))
	}
	for _, s := range r.spaced {
		if s.target == wardenT {
			lo, hi := gapRange(s.arrivals)
			fmt.Fprintf(w, "| streamed: every event forwarded as it arrives (events %s apart, none merged or held) | %d of %d events, gaps %s to %s | %s |\n",
				cfg.spacing, len(s.arrivals), gatewaybench.StreamEvents(cfg.spacingCount), lo, hi, yes(r.spacedOK(s)))
		}
	}
	if s := r.streams; s != nil {
		peak := max(s.rssPeak, s.vmHWM)
		fmt.Fprintf(w, "| %s concurrent streams in at most 200 MB RSS, all complete and correct | peak %s; %s of %s complete and equal, at most %s open at once | %s |\n",
			group(cfg.streams), mib(peak), group(s.result.OK), group(s.result.Started), group(s.result.PeakOpen),
			yes(peak <= aimRSS && s.result.OK == cfg.streams && s.result.PeakOpen == cfg.streams))
	}
	fmt.Fprintf(w, "| every call through warden decided and its usage recorded | %s | %s |\n", r.trailSummary(), yes(len(r.trailProblems()) == 0))
}

// trailSummary counts what the audit trail holds for all runs.
func (r *report) trailSummary() string {
	var calls, decisions, usage int
	for l, n := range r.counts {
		calls += n
		if c := r.trail[l]; c != nil {
			decisions += c.decisions
			usage += c.usageOK
		}
	}
	return fmt.Sprintf("%s calls answered; %s allow decisions; %s llm.usage records with the stand-in's exact tokens", group(calls), group(decisions), group(usage))
}

func (r *report) writeTrail(w io.Writer) {
	u := gatewaybench.Usage
	fmt.Fprintf(w, "\n### Audit trail\n\n")
	fmt.Fprintf(w, "Read back through `GET /v1/admin/audit`: %s records in all. Per run (by the calls' X-Claude-Code-Session-Id), the allow decisions, "+
		"and the llm.usage records linked to them by ref that have status ok, a cost and the stand-in's tokens (%d input, %d output, %s cache read, %s cache write).\n\n",
		group(r.trailTotal), u.Input, u.Output, group(int(u.CacheRead)), group(int(u.CacheWrite)))
	fmt.Fprintf(w, "| run | calls answered | allow decisions | llm.usage records | of which exact |\n|---|---:|---:|---:|---:|\n")
	for _, l := range slices.Sorted(maps.Keys(r.counts)) {
		c := r.trail[l]
		if c == nil {
			c = &trailCount{}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", l, group(r.counts[l]), group(c.decisions), group(c.usage), group(c.usageOK))
	}
	if errs := r.trailProblems(); len(errs) > 0 {
		fmt.Fprintf(w, "\nMISMATCH:\n\n")
		for _, e := range errs {
			fmt.Fprintf(w, "- %v\n", e)
		}
	}
}

func (r *report) writeMethod(w io.Writer) {
	cfg := r.cfg
	fmt.Fprintf(w, "\n### Method\n\n")
	budget := "under a day's budget of $1,000,000 and a rate limit of 100,000,000 calls a minute"
	if !cfg.budget {
		budget = "**without a budget or a rate limit (--budget=false): nothing is reserved or settled**"
	}
	fmt.Fprintf(w, "- Processes, each on its own free 127.0.0.1 port, all on the same %d CPUs as the load generator: the stand-in upstream "+
		"(gatewaybench.StandIn: the Anthropic Messages API with fixed answers, a net/http server); `warden serve` (SQLite in a fresh temporary directory, "+
		"WAL with synchronous=FULL) with a policy allowing `anthropic/claude-*` to the benchmark's project %s, "+
		"and an --llm-config routing `claude-*` to the stand-in with a provider key from the environment; "+
		"a bare `httputil.ReverseProxy` (`Rewrite: SetURL`, the default transport, full duplex on: golang/go#40747 cuts about 1 stream in 100 otherwise); nginx (one process, `master_process off`, "+
		"`proxy_buffering off`, HTTP/1.1 keep-alive to the upstream).\n", runtime.NumCPU(), budget)
	fmt.Fprintf(w, "- Every call carries the same headers (content type, anthropic-version, the agent's Warden session token as a bearer token, a run label "+
		"as X-Claude-Code-Session-Id) and the same body. Through warden the call is authenticated, decided (llm:invoke on anthropic/%s), "+
		"rate-limited, its worst case (%s input bytes, max_tokens %d) reserved against the budget, the decision recorded; then the provider key "+
		"replaces the token upstream, the answer is metered as it passes, priced, the reservation settled and an llm.usage record written. "+
		"The stand-in refuses a wrong key, so a call through warden that did not carry the provider key would fail.\n", gatewaybench.Model, group(cfg.bodyBytes), maxTokens)
	fmt.Fprintf(w, "- Open loop (hookbench.ConstantRate): call i is due at start + i/rate whatever the answers, up to %d in flight on keep-alive "+
		"connections, paced by a Linux timerfd; latency runs from its due time to the end of the answer (no coordinated omission). "+
		"Latencies go to a log-linear histogram (relative error below 1/128); percentiles are nearest-rank.\n", cfg.maxInFlight)
	fmt.Fprintf(w, "- Order: after a %s warm-up against each target (%s for streams), the runs go in halves in the order %s, then the same backwards, "+
		"so that a drift of the shared machine's speed falls on all alike; the halves are merged per target.\n",
		cfg.warmup, cfg.warmup/2, strings.Join(r.activeNames(), ", "))
	fmt.Fprintf(w, "- Every answer is compared with the stand-in's bytes as it is read (gatewaybench.Checker); its first byte is timed from the start "+
		"of the round trip. CPU per call is utime+stime of /proc/PID/stat over the run divided by the calls sent (10 ms ticks).\n")
	fmt.Fprintf(w, "- warden binary: %s.\n", r.wardenBin)
}

func (r *report) activeNames() []string {
	var names []string
	for _, t := range r.targets {
		if t.missing == "" {
			names = append(names, t.name)
		}
	}
	return names
}

// gapRange formats the shortest and longest gap between arrivals.
func gapRange(arrivals []time.Duration) (lo, hi string) {
	gaps := gatewaybench.Gaps(arrivals)
	if len(gaps) == 0 {
		return "-", "-"
	}
	return ms(slices.Min(gaps)), ms(slices.Max(gaps))
}

func equalOf(c *gatewaybench.Checked) string {
	n := c.Equal + c.Differ + c.Cut
	if c.Equal == n {
		return "all " + group(n)
	}
	return fmt.Sprintf("**%s of %s**", group(c.Equal), group(n))
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "/")
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "no ratio: the proxy added nothing measurable"
	}
	if q := float64(a) / float64(b); q < 100 {
		return fmt.Sprintf("%.2f×", q)
	}
	return group(int(float64(a)/float64(b))) + "×"
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// ms formats a duration in milliseconds with three significant digits.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 1000 || v <= -1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f ms", v)
	case v >= 1 || v <= -1:
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.3f ms", v)
}

func signedMS(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return ms(d)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// mib formats a byte count in MiB and MB.
func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB (%.1f MB)", float64(b)/(1<<20), float64(b)/1e6)
}

func perCall(cpu time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f µs", float64(cpu)/float64(n)/float64(time.Microsecond))
}

// group writes n with thousands separators.
func group(n int) string { return textfmt.Thousands(int64(n)) }
