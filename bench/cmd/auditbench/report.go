package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/shared/textfmt"
)

// The targets.
const (
	targetIngest = 20_000  // records/s, sustained, durable
	targetVerify = 500_000 // records/s
	targetReplay = time.Second
	targetQuery  = 100 * time.Millisecond
	targetScale  = 10_000_000 // records the query target is stated over
)

func writeReport(w io.Writer, r *result) {
	in := r.ingest
	fmt.Fprintf(w, "## Audit trail at scale\n\n")
	fmt.Fprintf(w, "%s; run took %s.\n\n", machine(r), r.took.Round(time.Second))

	var ordinary []int
	for _, s := range r.sessions {
		if !s.large {
			ordinary = append(ordinary, s.size)
		}
	}
	slices.Sort(ordinary)
	fmt.Fprintf(w, "Trail: **%s records** in %s sessions (%d of exactly %s records; the others %s to %s records, median %s), "+
		"written by %d goroutines at once through `sqlite.AuditLog.Append` (durable, group commit), one session per goroutine at a time, its records in order.",
		thousands(in.records), thousands(int64(len(r.sessions))), r.cfg.large, thousands(largeSize),
		thousands(int64(ordinary[0])), thousands(int64(ordinary[len(ordinary)-1])), thousands(int64(ordinary[len(ordinary)/2])), r.cfg.appenders)
	if r.cfg.reuse != "" {
		fmt.Fprintf(w, " This run read a trail an earlier run had built and kept (`--reuse`): it did not measure the ingest.")
	}
	if in.stopped != "" {
		fmt.Fprintf(w, " **The ingest stopped early, with %s of the %s records planned, because %s** (%d of %d sessions complete): every figure below is over %s records.",
			thousands(in.records), thousands(r.planned), in.stopped, in.complete, len(r.sessions), thousands(in.records))
	}
	if in.records < targetScale {
		fmt.Fprintf(w, " The issue states its targets over %s records; this trail is smaller (`--records`, default %s, which fits a run of a few minutes). Pass `--records 10000000` for the full scale.",
			thousands(targetScale), thousands(defaultRecords))
	}
	fmt.Fprintf(w, "\nDatabase: %s on disk after the run (%s bytes per record)", bytesIEC(r.dbBytes), thousands(r.dbBytes/max(in.records, 1)))
	if r.cfg.reuse == "" {
		fmt.Fprintf(w, "; the WAL held %s when the ingest ended and closing (its checkpoint) took %s", bytesIEC(r.walBefore), r.closeTook.Round(time.Millisecond))
	}
	fmt.Fprintf(w, ". The database was closed and reopened before the reads. %s\n\n", cacheSentence(r.cache))

	fmt.Fprintf(w, "| metric | measured | target | met |\n|---|---|---|---|\n")
	if r.cfg.reuse == "" {
		overall := float64(in.records) / in.elapsed.Seconds()
		sustained, slowest := in.sustained()
		span := "the whole ingest (the sessions never ran out)"
		if in.busy > 0 {
			span = fmt.Sprintf("the first %s records, while all %d appenders had a session", thousands(in.busyRecords), r.cfg.appenders)
		}
		fmt.Fprintf(w, "| sustained durable ingest | %s records/s over %s; slowest chunk of %s in it %s/s; %s/s over all %s records (%s) | ≥ %s records/s | %s |\n",
			thousands(int64(sustained)), span, thousands(in.chunk), thousands(int64(slowest)), thousands(int64(overall)), thousands(in.records),
			in.elapsed.Round(time.Second), thousands(targetIngest), yesNo(sustained >= targetIngest && slowest >= targetIngest))
	}
	queryRow(w, fmt.Sprintf("query by session, %d random ordinary sessions (%s records each on average)", len(r.small.times), thousands(int64(r.small.records/max(len(r.small.times), 1)))), r.small, in.records)
	queryRow(w, fmt.Sprintf("query by session, a large session (%s records, %d runs)", thousands(int64(r.large.records/max(len(r.large.times), 1))), len(r.large.times)), r.large, in.records)
	rp := r.replay.times.quantile(0.5)
	met := yesNo(rp <= targetReplay)
	if rp <= targetReplay && in.records < targetScale {
		met = fmt.Sprintf("yes, in a trail of %s records", thousands(in.records))
	}
	if r.replay.records < largeSize {
		met = fmt.Sprintf("not shown (the session had %s records)", thousands(int64(r.replay.records)))
		if rp > targetReplay {
			met = "**no**"
		}
	}
	fmt.Fprintf(w, "| replay of a %s-record session (Query + `audit.Replay`, median of %d) | %s (%s events) | ≤ %s for %s records | %s |\n",
		thousands(int64(r.replay.records)), len(r.replay.times), ms(rp), thousands(int64(r.replay.events)), targetReplay, thousands(largeSize), met)
	v := r.verify
	vr := float64(v.report.Records) / v.elapsed.Seconds()
	status := "OK"
	if !v.report.OK {
		status = fmt.Sprintf("**FAILED**: %v", v.report.Break)
	}
	fmt.Fprintf(w, "| verify the whole trail (`audit.VerifyStored`) | %s records/s (%s records in %s, %s) | ≥ %s records/s | %s |\n\n",
		thousands(int64(vr)), thousands(v.report.Records), v.elapsed.Round(time.Millisecond), status, thousands(targetVerify), yesNo(v.report.OK && vr >= targetVerify))

	for _, q := range []struct {
		label string
		q     *queried
	}{{"ordinary", r.small}, {"large", r.large}} {
		p99 := q.q.at(0.99)
		cpu := ""
		if q.q.cpu[p99] > 0 {
			cpu = ", using " + ms(q.q.cpu[p99]) + " of CPU"
		}
		fmt.Fprintf(w, "During the %d %s queries: the p99 one read %s records in %s%s; %d garbage collections, %s of pauses in all; %s read from the disk; %s.\n",
			len(q.q.times), q.label, thousands(int64(q.q.sizes[p99])), ms(q.q.times[p99]), cpu, q.q.gcs, ms(q.q.gcPause), diskRead(q.q.diskBytes), othersShare(q.q))
	}
	fmt.Fprintln(w)

	if r.cfg.reuse == "" {
		writeIngest(w, in)
	}

	d := r.diagnosis
	fmt.Fprintf(w, "\n### Query plans (SQLite %s)\n\n", d.version)
	fmt.Fprintf(w, "- `AuditLog.Query` by session, the session's seqs: `%s` → %s\n", seqsSQL, d.seqsPlan)
	fmt.Fprintf(w, "- `AuditLog.Query` by session, each chunk of its records: `%s` → %s\n", chunkSQL, d.chunkPlan)
	fmt.Fprintf(w, "- the session head read in each batch's commit: `%s` → %s\n", headSQL, d.headPlan)
	fmt.Fprintf(w, "- for comparison, not Warden's code now: a session read as `AuditLog.Query` read it before, `%s` → %s, pages of 500 on one connection, each record decoded by `encoding/json`; "+
		"the same %d ordinary sessions read that way after the verify (which reads the whole file) took p50 %s, p99 %s, max %s.\n",
		serialSQL, d.serialPlan, len(d.serial), ms(d.serial.quantile(0.5)), ms(d.serial.quantile(0.99)), ms(d.serial.quantile(1)))
}

// writeIngest writes the ingest's rate by chunk and its Append latency.
func writeIngest(w io.Writer, in *ingested) {
	rates := in.chunkRates()
	fmt.Fprintf(w, "### Ingest by chunk\n\n| records | records/s |\n|---|---:|\n")
	for i, rate := range rates {
		fmt.Fprintf(w, "| %s–%s | %s |\n", thousands(int64(i)*in.chunk), thousands(int64(i+1)*in.chunk), thousands(int64(rate)))
	}
	if n := int64(len(rates)) * in.chunk; n < in.records {
		var last time.Duration
		if len(rates) > 0 {
			last = in.chunkAt[len(rates)-1]
		}
		fmt.Fprintf(w, "| %s–%s (partial) | %s |\n", thousands(n), thousands(in.records), thousands(int64(float64(in.records-n)/(in.elapsed-last).Seconds())))
	}
	if len(in.latency) > 0 {
		q := func(p float64) time.Duration {
			return in.latency[min(int(p*float64(len(in.latency))), len(in.latency)-1)]
		}
		fmt.Fprintf(w, "\nLatency of one Append under this load (one in %d sampled): p50 %s, p99 %s, max %s.\n",
			latencyEvery, ms(q(0.5)), ms(q(0.99)), ms(in.latency[len(in.latency)-1]))
	}
}

// cacheSentence says what the OS page cache held of the database when the
// reads began.
func cacheSentence(c *cacheState) string {
	switch c.mode {
	case "warm":
		return fmt.Sprintf("The database file was read through before the reads (%s), which left %s of it in the OS page cache (warm).", c.took.Round(time.Second), percent(c.resident))
	case "cold":
		return fmt.Sprintf("The OS page cache was dropped before the reads (`echo 3 > /proc/sys/vm/drop_caches`), which left %s of the database file in it (cold): each page a query touched first came from the disk.", percent(c.resident))
	}
	return fmt.Sprintf("The OS page cache was left as it was (`--page-cache as-is`): %s of the database file was in it when the reads began.", percent(c.resident))
}

// othersShare says how much of the machine's CPU time other processes took
// while the queries ran.
func othersShare(q *queried) string {
	if q.available <= 0 {
		return "the CPU time other processes took is unknown"
	}
	return fmt.Sprintf("other processes (and the hypervisor) took %.0f%% of the machine's CPU time", 100*float64(q.others)/float64(q.available))
}

func diskRead(n int64) string {
	if n < 0 {
		return "an unknown amount"
	}
	return bytesIEC(n)
}

func queryRow(w io.Writer, label string, q *queried, records int64) {
	p99 := q.times.quantile(0.99)
	met := yesNo(p99 <= targetQuery)
	if p99 <= targetQuery && records < targetScale {
		met = fmt.Sprintf("not shown (%s records, not %s)", thousands(records), thousands(targetScale))
	}
	fmt.Fprintf(w, "| %s | p50 %s, p99 %s, max %s | ≤ %s over %s records | %s |\n",
		label, ms(q.times.quantile(0.5)), ms(p99), ms(q.times.quantile(1)), ms(targetQuery), thousands(targetScale), met)
}

// machine describes where and with what the run was made.
func machine(r *result) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	driver := "modernc.org/sqlite"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == driver {
				driver += " " + m.Version
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			load = "; load average " + strings.Join(f[:3], " ") + " at the end"
		}
	}
	return fmt.Sprintf("%s, %s/%s, %d CPUs (%s), GOMAXPROCS=%d; %s; database in %s; %s%s",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu, runtime.GOMAXPROCS(0),
		driver, r.dir, r.started.UTC().Format("2006-01-02 15:04 UTC"), load)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func ms(d time.Duration) string {
	switch f := float64(d) / float64(time.Millisecond); {
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64) + " ms"
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(f, 'f', 2, 64) + " ms"
	}
}

// thousands formats n with commas between groups of three digits.
func thousands(n int64) string { return textfmt.Thousands(n) }

func bytesIEC(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
