// Command hookbench measures the round trip of Warden's hook decision
// endpoint on loopback, durable audit write included, against a trivial Go
// HTTP handler that answers a reply of the same size, and prints the
// figures as markdown tables. Progress goes to stderr.
//
// It starts `warden serve` (built from the module bench replaces, or
// --warden) in a temporary data directory and the trivial server (this
// program re-executed) as two separate processes on free 127.0.0.1 ports,
// creates a project and logs an agent in through the API, then measures:
//
//   - the idle resident memory of warden, after start, login and one decision;
//   - open-loop latency at --rate for --duration against each server, in
//     halves ordered trivial, warden, warden, trivial;
//   - closed-loop throughput with --sat-workers for --sat-duration against
//     warden (and the trivial server, as the ceiling of this machine);
//   - that the audit trail holds exactly one decision record per decision
//     answered.
//
// Usage, from bench/:
//
//	go run ./cmd/hookbench [--duration 30s] [--rate 1000] [--sat-duration 10s] [--warden PATH]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/wardenhq/warden/bench/hookbench"
	"github.com/wardenhq/warden/bench/internal/benchmain"
	"github.com/wardenhq/warden/bench/internal/child"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == trivialFlag {
		if err := trivialServer(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "hookbench trivial server:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	fs := benchmain.FlagSet("hookbench")
	fs.StringVar(&cfg.warden, "warden", "", "warden binary to run (default: build cmd/warden of the replaced module)")
	fs.Float64Var(&cfg.rate, "rate", 1000, "requests per second of the constant-rate runs")
	fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "length of the constant-rate run against each server")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "constant-rate warm-up against each server, not measured")
	fs.IntVar(&cfg.maxInFlight, "max-in-flight", 256, "bound on requests in flight in the constant-rate runs")
	fs.DurationVar(&cfg.satDuration, "sat-duration", 10*time.Second, "length of the saturation run")
	fs.IntVar(&cfg.satWorkers, "sat-workers", 64, "closed-loop workers of the saturation run")
	fs.BoolVar(&cfg.satTrivial, "sat-trivial", true, "also saturate the trivial server, for this machine's ceiling")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout of one request")
	benchmain.Run(fs, func(ctx context.Context, stdout, stderr io.Writer) error {
		return run(ctx, cfg, stdout, stderr)
	})
}

// config is what a run is made with.
type config struct {
	warden      string
	rate        float64
	duration    time.Duration
	warmup      time.Duration
	maxInFlight int
	satDuration time.Duration
	satWorkers  int
	satTrivial  bool
	timeout     time.Duration
}

func (c config) check() error {
	switch {
	case !(c.rate > 0):
		return fmt.Errorf("--rate %v: want a positive rate", c.rate)
	case c.duration < 2*time.Millisecond:
		return fmt.Errorf("--duration %v: want at least 2ms (it is run in halves)", c.duration)
	case c.warmup < 0:
		return fmt.Errorf("--warmup %v: want zero or more", c.warmup)
	case c.maxInFlight < 1:
		return fmt.Errorf("--max-in-flight %d: want at least 1", c.maxInFlight)
	case c.satDuration <= 0:
		return fmt.Errorf("--sat-duration %v: want a positive duration", c.satDuration)
	case c.satWorkers < 1:
		return fmt.Errorf("--sat-workers %d: want at least 1", c.satWorkers)
	case c.timeout <= 0:
		return fmt.Errorf("--timeout %v: want a positive duration", c.timeout)
	}
	return nil
}

// Run labels: the session_id of the hook calls of each run, by which the
// audit trail is counted.
const (
	labelProbe  = "hookbench-probe"
	labelWarmup = "hookbench-warmup"
	labelHalf1  = "hookbench-rate-1"
	labelHalf2  = "hookbench-rate-2"
	labelSat    = "hookbench-saturate"
)

// pause separates the runs, so that one's stragglers do not meet the next.
const pause = 500 * time.Millisecond

// server is one side of the comparison.
type server struct {
	name   string
	proc   *child.Process
	target hookbench.Target
	client *http.Client // the constant-rate runs' connections, kept across halves
}

// measured is one run against one server.
type measured struct {
	server    string
	label     string
	result    *hookbench.Result
	serverCPU time.Duration // CPU time the server used during the run
	clientCPU time.Duration // CPU time this program used during the run
}

func run(ctx context.Context, cfg config, out, progress io.Writer) (err error) {
	if err := cfg.check(); err != nil {
		return err
	}
	start := time.Now()
	rep := &report{cfg: cfg, started: start}
	rep.loadBefore = child.LoadAverage()

	dir, err := os.MkdirTemp("", "hookbench-")
	if err != nil {
		return fmt.Errorf("create a temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	bin := cfg.warden
	if bin == "" {
		fmt.Fprintln(progress, "building warden")
		if bin, _, err = child.BuildWarden(ctx, dir); err != nil {
			return err
		}
	}
	rep.wardenBin = bin

	fmt.Fprintln(progress, "measuring fsync in the data directory's file system")
	if rep.fsync, err = hookbench.MeasureFsync(dir, 200, 5*time.Second); err != nil {
		return err
	}

	fmt.Fprintln(progress, "starting warden")
	w, err := startWarden(ctx, bin, dir)
	if err != nil {
		return err
	}
	defer stopProc(w.Process, progress, &err)
	fmt.Fprintf(progress, "warden listening on %s (pid %d)\n", w.Endpoint, w.PID())
	if err := w.Login(ctx, "project-a", "bench"); err != nil {
		return err
	}
	reply, err := w.probe(ctx, labelProbe)
	if err != nil {
		return err
	}
	rep.replyBytes = len(reply)
	time.Sleep(pause)
	if rep.idleRSS, _, err = w.Memory(); err != nil {
		return err
	}
	fmt.Fprintf(progress, "warden idle RSS %s; decision reply %d bytes\n", mib(rep.idleRSS), len(reply))

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start the trivial server: %w", err)
	}
	tp, err := child.Start("trivial server", dir+"/trivial.log", nil, self, trivialFlag, "--addr", "127.0.0.1:0", "--reply", string(reply))
	if err != nil {
		return err
	}
	defer stopProc(tp, progress, &err)
	trivialAddr, err := tp.WaitLine(ctx, child.Listening, 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "trivial server listening on http://%s (pid %d)\n", trivialAddr, tp.PID())

	// Both servers get the same requests, byte for byte.
	header := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + w.SessionToken}}
	trivial := &server{name: "trivial", proc: tp,
		target: hookbench.Target{URL: "http://" + trivialAddr + hookPath, Header: header},
		client: hookbench.NewClient(cfg.maxInFlight, cfg.timeout)}
	ward := &server{name: "warden", proc: w.Process,
		target: hookbench.Target{URL: w.Endpoint + hookPath, Header: header},
		client: hookbench.NewClient(cfg.maxInFlight, cfg.timeout)}
	rep.expected = map[string]int{labelProbe: 1}
	rep.sent = map[string]int{labelProbe: 1}
	count := func(m *measured) {
		if m.server == ward.name {
			rep.expected[m.label] += m.result.OK
			rep.sent[m.label] += m.result.Sent
		}
	}

	if cfg.warmup > 0 {
		for _, s := range []*server{trivial, ward} {
			m, err := constantRate(ctx, cfg, s, labelWarmup, cfg.warmup, progress)
			if err != nil {
				return err
			}
			count(m)
			time.Sleep(pause)
		}
	}
	// Halves in the order A B B A: a drift of the machine's speed over the
	// run (other jobs on the two shared cores, the disk) falls equally on
	// both servers, to first order, instead of on whichever ran second.
	half := cfg.duration / 2
	for _, step := range []struct {
		s     *server
		label string
		d     time.Duration
	}{{trivial, labelHalf1, half}, {ward, labelHalf1, half}, {ward, labelHalf2, cfg.duration - half}, {trivial, labelHalf2, cfg.duration - half}} {
		m, err := constantRate(ctx, cfg, step.s, step.label, step.d, progress)
		if err != nil {
			return err
		}
		count(m)
		rep.halves = append(rep.halves, m)
		time.Sleep(pause)
	}

	if cfg.satTrivial {
		if rep.satTrivial, err = saturate(ctx, cfg, trivial, progress); err != nil {
			return err
		}
		time.Sleep(pause)
	}
	if rep.satWarden, err = saturate(ctx, cfg, ward, progress); err != nil {
		return err
	}
	count(rep.satWarden)
	if rep.afterRSS, rep.peakRSS, err = w.Memory(); err != nil {
		return err
	}

	fmt.Fprintln(progress, "counting the audit trail")
	if rep.trail, rep.trailTotal, err = w.countTrail(ctx); err != nil {
		return err
	}
	rep.loadAfter = child.LoadAverage()
	rep.elapsed = time.Since(start)

	rep.write(out)
	fmt.Fprintf(progress, "done in %s\n", rep.elapsed.Round(time.Second))
	if problems := rep.problems(); len(problems) > 0 {
		return fmt.Errorf("the run is not clean: %s", errors.Join(problems...))
	}
	return nil
}

// stopProc stops p when run returns, and reports a failure to stop in
// *err unless run already failed.
func stopProc(p *child.Process, progress io.Writer, err *error) {
	if stopErr := p.Stop(10 * time.Second); stopErr != nil {
		fmt.Fprintln(progress, "hookbench:", stopErr)
		if *err == nil {
			*err = stopErr
		}
	}
}

func constantRate(ctx context.Context, cfg config, s *server, label string, d time.Duration, progress io.Writer) (*measured, error) {
	fmt.Fprintf(progress, "%s %s: %v requests/s for %v\n", label, s.name, cfg.rate, d)
	t := s.target
	t.Body = hookBody(label)
	m := &measured{server: s.name, label: label}
	err := withCPU(s.proc, m, func() (err error) {
		m.result, err = hookbench.ConstantRate(ctx, s.client, t, hookbench.RateConfig{
			PerSecond: cfg.rate, Duration: d, MaxInFlight: cfg.maxInFlight, Grace: cfg.timeout})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s against %s: %w", label, s.name, err)
	}
	r := m.result
	fmt.Fprintf(progress, "  %d answered, %d errors, %d unsent; p50 %s, p99 %s, max %s; send lag p99 %s\n",
		r.OK, r.Errors, r.Unsent, ms(r.Latency.Percentile(50)), ms(r.Latency.Percentile(99)), ms(r.Latency.Max()), ms(r.Lag.Percentile(99)))
	return m, nil
}

func saturate(ctx context.Context, cfg config, s *server, progress io.Writer) (*measured, error) {
	fmt.Fprintf(progress, "saturate %s: %d workers for %v\n", s.name, cfg.satWorkers, cfg.satDuration)
	t := s.target
	t.Body = hookBody(labelSat)
	c := hookbench.NewClient(cfg.satWorkers, cfg.timeout)
	defer c.CloseIdleConnections()
	m := &measured{server: s.name, label: labelSat}
	err := withCPU(s.proc, m, func() (err error) {
		m.result, err = hookbench.Saturate(ctx, c, t, hookbench.SaturateConfig{
			Workers: cfg.satWorkers, Duration: cfg.satDuration, MaxRequests: 10_000_000})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("saturate %s: %w", s.name, err)
	}
	r := m.result
	fmt.Fprintf(progress, "  %.0f requests/s; %d answered, %d errors; p50 %s, p99 %s\n",
		r.Throughput(), r.OK, r.Errors, ms(r.Latency.Percentile(50)), ms(r.Latency.Percentile(99)))
	return m, nil
}

// withCPU runs f and notes in m the CPU time p and this program used.
func withCPU(p *child.Process, m *measured, f func() error) error {
	s0, err1 := p.CPU()
	c0, err2 := child.CPUTime("self")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if err := f(); err != nil {
		return err
	}
	s1, err1 := p.CPU()
	c1, err2 := child.CPUTime("self")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	m.serverCPU, m.clientCPU = s1-s0, c1-c0
	return nil
}
