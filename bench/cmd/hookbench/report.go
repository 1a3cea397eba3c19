package main

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"time"

	"github.com/wardenhq/warden/bench/hookbench"
	"github.com/wardenhq/warden/shared/textfmt"
)

// The aims.
const (
	aimP50Ratio   = 1.5
	aimP99Ratio   = 2.0
	aimSaturation = 5000       // decisions per second
	aimIdleRSS    = 40_000_000 // bytes: 40 MB, the stricter reading
)

// report is everything a run measured.
type report struct {
	cfg        config
	started    time.Time
	elapsed    time.Duration
	wardenBin  string
	loadBefore string
	loadAfter  string
	fsync      *hookbench.Histogram
	replyBytes int

	halves                []*measured // constant rate, in the order run
	satTrivial, satWarden *measured   // satTrivial is nil unless --sat-trivial

	idleRSS, afterRSS, peakRSS int64

	expected   map[string]int // decisions answered by warden, by label
	sent       map[string]int // decision requests sent to warden, by label
	trail      map[string]*trailCount
	trailTotal int
}

// merged returns the constant-rate halves of one server merged, with the
// CPU times summed.
func (r *report) merged(server string) *measured {
	m := &measured{server: server, result: &hookbench.Result{}}
	for _, h := range r.halves {
		if h.server == server {
			m.result.Merge(h.result)
			m.serverCPU += h.serverCPU
			m.clientCPU += h.clientCPU
		}
	}
	return m
}

// trailProblems compares the audit trail with the decisions answered.
func (r *report) trailProblems() []error {
	var errs []error
	for _, l := range slices.Sorted(maps.Keys(r.expected)) {
		want := r.expected[l]
		c := r.trail[l]
		if c == nil {
			c = &trailCount{}
		}
		if c.decisions != want {
			errs = append(errs, fmt.Errorf("run %s: %d decision records for %d decisions answered (%d sent)", l, c.decisions, want, r.sent[l]))
		}
		if d := duplicates(c); d > 0 {
			errs = append(errs, fmt.Errorf("run %s: %d tool_use_ids recorded more than once", l, d))
		}
		for code, n := range c.others {
			errs = append(errs, fmt.Errorf("run %s: %d unexpected %s records", l, n, code))
		}
	}
	for _, l := range slices.Sorted(maps.Keys(r.trail)) {
		if _, ok := r.expected[l]; !ok {
			errs = append(errs, fmt.Errorf("%d records of an unknown client session %q", r.trail[l].decisions, l))
		}
	}
	return errs
}

func duplicates(c *trailCount) int {
	n := 0
	for _, k := range c.refs {
		n += k - 1
	}
	return n
}

func (r *report) decisionRecords() (records, answered int) {
	for l, want := range r.expected {
		answered += want
		if c := r.trail[l]; c != nil {
			records += c.decisions
		}
	}
	return records, answered
}

// problems lists what makes the run's figures unreliable: failed or unsent
// requests, and an audit trail that does not match the decisions.
func (r *report) problems() []error {
	var errs []error
	runs := append(slices.Clone(r.halves), r.satWarden)
	if r.satTrivial != nil {
		runs = append(runs, r.satTrivial)
	}
	for _, m := range runs {
		if m.result.Errors > 0 || m.result.Unsent > 0 {
			errs = append(errs, fmt.Errorf("run %s against %s: %d errors (%s), %d unsent",
				m.label, m.server, m.result.Errors, m.result.FirstError, m.result.Unsent))
		}
	}
	return append(errs, r.trailProblems()...)
}

func (r *report) write(w io.Writer) {
	cfg := r.cfg
	triv, ward := r.merged("trivial"), r.merged("warden")
	ratio := func(p float64) float64 {
		return float64(ward.result.Latency.Percentile(p)) / float64(triv.result.Latency.Percentile(p))
	}

	fmt.Fprintf(w, "## Hook decision round trip: warden against a trivial handler\n\n")
	fmt.Fprintf(w, "%s, %s/%s, %d CPUs, GOMAXPROCS=%d; load average %s before, %s after; %s; run took %s.\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		r.loadBefore, r.loadAfter, r.started.UTC().Format("2006-01-02 15:04 MST"), r.elapsed.Round(time.Second))

	fmt.Fprintf(w, "### Constant rate: %s requests/s for %s against each server\n\n", group(int(cfg.rate)), cfg.duration)
	fmt.Fprintf(w, "| server | answered | errors | p50 | p90 | p99 | max | server CPU/request |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range []*measured{triv, ward} {
		res := m.result
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", serverName(m.server), group(res.OK), res.Errors+res.Unsent,
			ms(res.Latency.Percentile(50)), ms(res.Latency.Percentile(90)), ms(res.Latency.Percentile(99)), ms(res.Latency.Max()),
			perRequest(m.serverCPU, res.Sent))
	}
	fmt.Fprintf(w, "| **warden / trivial** | | | **%.2f×** | %.2f× | **%.2f×** | %.2f× | %s |\n\n",
		ratio(50), ratio(90), ratio(99), float64(ward.result.Latency.Max())/float64(triv.result.Latency.Max()),
		cpuRatio(ward, triv))

	records, answered := r.decisionRecords()
	trailErrs := r.trailProblems()
	fmt.Fprintf(w, "### Aims\n\n| aim | measured | met |\n|---|---|---|\n")
	fmt.Fprintf(w, "| p50 within %.1f× of the trivial handler | %.2f× (%s against %s) | %s |\n", aimP50Ratio, ratio(50),
		ms(ward.result.Latency.Percentile(50)), ms(triv.result.Latency.Percentile(50)), yes(ratio(50) <= aimP50Ratio))
	fmt.Fprintf(w, "| p99 within %.0f× of the trivial handler | %.2f× (%s against %s) | %s |\n", aimP99Ratio, ratio(99),
		ms(ward.result.Latency.Percentile(99)), ms(triv.result.Latency.Percentile(99)), yes(ratio(99) <= aimP99Ratio))
	sat := r.satWarden.result
	fmt.Fprintf(w, "| at least %s decisions/s at saturation | %s/s (%d workers, %s, %d errors) | %s |\n", group(aimSaturation),
		group(int(sat.Throughput())), cfg.satWorkers, cfg.satDuration, sat.Errors, yes(sat.Throughput() >= aimSaturation && sat.Errors == 0))
	fmt.Fprintf(w, "| idle memory at most 40 MB RSS | %s | %s |\n", mib(r.idleRSS), yes(r.idleRSS <= aimIdleRSS))
	fmt.Fprintf(w, "| one audit record per decision | %s decision records for %s decisions answered | %s |\n\n",
		group(records), group(answered), yes(len(trailErrs) == 0))

	fmt.Fprintf(w, "### Each run\n\n")
	fmt.Fprintf(w, "Latency counts from the scheduled send time; send lag is how late the load generator sent; service time counts from the actual send.\n\n")
	fmt.Fprintf(w, "| run | server | answered | errors | unsent | p50 | p99 | max | send lag p99 | service p50 | service p99 | server CPU/request | load generator CPU/request |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range r.halves {
		res := m.result
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", m.label, m.server, group(res.OK), res.Errors, res.Unsent,
			ms(res.Latency.Percentile(50)), ms(res.Latency.Percentile(99)), ms(res.Latency.Max()), ms(res.Lag.Percentile(99)),
			ms(res.Service.Percentile(50)), ms(res.Service.Percentile(99)), perRequest(m.serverCPU, res.Sent), perRequest(m.clientCPU, res.Sent))
	}
	fmt.Fprintf(w, "\n### Saturation: %d closed-loop workers for %s\n\n", cfg.satWorkers, cfg.satDuration)
	fmt.Fprintf(w, "| server | requests/s | answered | errors | p50 | p99 | max | server CPU/request | load generator CPU/request | CPU used of %d |\n", runtime.NumCPU())
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range []*measured{r.satTrivial, r.satWarden} {
		if m == nil {
			continue
		}
		res := m.result
		fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s | %s | %s | %.2f |\n", serverName(m.server), group(int(res.Throughput())), group(res.OK), res.Errors,
			ms(res.Latency.Percentile(50)), ms(res.Latency.Percentile(99)), ms(res.Latency.Max()),
			perRequest(m.serverCPU, res.Sent), perRequest(m.clientCPU, res.Sent), (m.serverCPU+m.clientCPU).Seconds()/res.Elapsed.Seconds())
	}

	fmt.Fprintf(w, "\n### Memory, disk, audit trail\n\n")
	fmt.Fprintf(w, "- warden RSS: %s idle (after start, login and one decision), %s after the runs, %s at peak (VmHWM).\n",
		mib(r.idleRSS), mib(r.afterRSS), mib(r.peakRSS))
	fmt.Fprintf(w, "- fsync after a 4 KiB append in the data directory's file system (%d times): p50 %s, p99 %s, max %s.\n",
		r.fsync.Count(), ms(r.fsync.Percentile(50)), ms(r.fsync.Percentile(99)), ms(r.fsync.Max()))
	fmt.Fprintf(w, "- audit trail: %s records in all; %s decision records for %s decisions answered", group(r.trailTotal), group(records), group(answered))
	if len(trailErrs) == 0 {
		fmt.Fprintf(w, ", one per decision, no tool_use_id twice in a run.\n")
	} else {
		fmt.Fprintf(w, ". MISMATCH:\n")
		for _, e := range trailErrs {
			fmt.Fprintf(w, "  - %v\n", e)
		}
	}

	fmt.Fprintf(w, "\n### Method\n\n")
	fmt.Fprintf(w, "- Two separate processes on 127.0.0.1, each on its own free port: `warden serve` (built-in example policy, SQLite in a fresh temporary directory, "+
		"WAL with synchronous=FULL: every decision is committed and fsynced before the answer, by group commit) and the trivial server, "+
		"a net/http handler on the same route that reads the body and answers warden's own %d-byte decision reply verbatim. "+
		"The load generator is a third process on the same %d CPUs.\n", r.replyBytes, runtime.NumCPU())
	fmt.Fprintf(w, "- Every request is the same PreToolUse call (`Bash`, `git push origin feature/x`, allowed by rule `shell`) with a session token, "+
		"with a tool_use_id unique within its run; both servers get the same bytes.\n")
	fmt.Fprintf(w, "- Constant rate: open loop (github.com/wardenhq/warden/bench/hookbench.ConstantRate). Request i is due at start + i/rate whatever the answers, "+
		"up to %d in flight on keep-alive connections; its latency runs from its due time to the end of the answer, so a stall is charged to "+
		"every request it delays (no coordinated omission). Sends are paced by a Linux timerfd: the Go runtime wakes an idle process for a timer "+
		"only at whole milliseconds, which would add up to 1 ms to every latency; the send lag column shows what is left. Latencies go to a log-linear histogram (relative error below 1/128; max exact); "+
		"percentiles are nearest-rank.\n", cfg.maxInFlight)
	fmt.Fprintf(w, "- Order: after a %s warm-up against each server (not measured), the %s per server run in halves in the order trivial, warden, warden, trivial, "+
		"so that a drift of the shared machine's speed falls on both alike; the halves are merged per server.\n", cfg.warmup, cfg.duration)
	fmt.Fprintf(w, "- Saturation: closed loop (hookbench.Saturate), %d workers each sending its next request when its last is answered, over %d keep-alive connections; "+
		"requests/s counts answers over the time from the first send to the last answer.\n", cfg.satWorkers, cfg.satWorkers)
	fmt.Fprintf(w, "- Idle RSS is VmRSS of /proc/PID/status %s after the first decision, before any load. CPU per request is utime+stime of /proc/PID/stat over the run "+
		"divided by the requests sent (10 ms ticks).\n", pause)
	fmt.Fprintf(w, "- The audit trail is read back through `GET /v1/admin/audit?after=N&limit=1000` and its decision records counted per run "+
		"(by the calls' session_id) against the 2xx answers warden gave.\n")
	fmt.Fprintf(w, "- warden binary: %s.\n", r.wardenBin)
}

func serverName(s string) string {
	if s == "warden" {
		return "warden (decision + durable audit)"
	}
	return "trivial handler"
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
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	case v >= 1:
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.3f ms", v)
}

// mib formats a byte count in MiB and MB.
func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB (%.1f MB)", float64(b)/(1<<20), float64(b)/1e6)
}

func perRequest(cpu time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f µs", float64(cpu)/float64(n)/float64(time.Microsecond))
}

func cpuRatio(a, b *measured) string {
	if b.serverCPU == 0 || b.result.Sent == 0 || a.result.Sent == 0 {
		return "-"
	}
	ra := float64(a.serverCPU) / float64(a.result.Sent)
	rb := float64(b.serverCPU) / float64(b.result.Sent)
	return fmt.Sprintf("%.1f×", ra/rb)
}

// group writes n with thousands separators.
func group(n int) string { return textfmt.Thousands(int64(n)) }
