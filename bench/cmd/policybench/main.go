// Command policybench compares the decision and compile speed of Warden,
// Cedar (cedar-go) and Rego (OPA) on the same scenarios, in one process, and
// prints the results as markdown tables. Each figure is the median of several
// runs of testing.Benchmark. Progress goes to stderr.
//
//	go run ./cmd/policybench [-runs 5] [-benchtime 300ms] [-compile=true]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wardenhq/warden/bench/scenario"

	"github.com/wardenhq/warden/shared/textfmt"
)

func main() {
	testing.Init()
	runs := flag.Int("runs", 5, "runs of testing.Benchmark per measurement; the median is reported")
	benchtime := flag.Duration("benchtime", 300*time.Millisecond, "minimum time of one run")
	compile := flag.Bool("compile", true, "also measure parsing and compiling the policies")
	flag.Parse()
	if err := run(os.Stdout, os.Stderr, *runs, *benchtime, *compile); err != nil {
		fmt.Fprintln(os.Stderr, "policybench:", err)
		os.Exit(1)
	}
}

// row is one measured engine on one scenario.
type row struct {
	scenario string
	engine   string
	result   testing.BenchmarkResult
	problem  string // why there is no result
}

func run(out, progress io.Writer, runs int, benchtime time.Duration, compile bool) error {
	if runs < 1 {
		return fmt.Errorf("invalid -runs %d: need at least 1", runs)
	}
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		return fmt.Errorf("set test.benchtime: %w", err)
	}
	start := time.Now()
	scenarios := []*scenario.Scenario{scenario.Small(), scenario.Large()}
	engines := scenario.Engines()
	failed := false

	var eval []row
	for _, s := range scenarios {
		for _, e := range engines {
			r := row{scenario: s.Name, engine: e.Name()}
			fmt.Fprintf(progress, "evaluate %s/%s: building and checking %d requests\n", e.Name(), s.Name, len(s.Requests))
			decide, err := scenario.Build(e, s)
			if err != nil {
				return err
			}
			if bad := check(progress, e, s, decide); bad > 0 {
				failed = true
				r.problem = fmt.Sprintf("%d wrong decisions; not timed", bad)
				eval = append(eval, r)
				continue
			}
			r.result = median(progress, "evaluate "+e.Name()+"/"+s.Name, runs, scenario.EvaluateBenchmark(e, s, decide))
			if r.result.N == 0 {
				failed = true
				r.problem = "benchmark failed"
			}
			eval = append(eval, r)
		}
	}

	var comp []row
	if compile {
		for _, s := range scenarios {
			for _, e := range engines {
				r := row{scenario: s.Name, engine: e.Name()}
				f, err := scenario.CompileBenchmark(e, s)
				if err != nil {
					return err
				}
				r.result = median(progress, "compile "+e.Name()+"/"+s.Name, runs, f)
				if r.result.N == 0 {
					failed = true
					r.problem = "benchmark failed"
				}
				comp = append(comp, r)
			}
		}
	}

	fmt.Fprintf(out, "## Policy engines compared\n\n%s\n\n", environment(runs, benchtime))
	fmt.Fprintf(out, "### Evaluate: one decision (requests cycled: %d per scenario, half allowed)\n\n", len(scenarios[0].Requests))
	table(out, eval)
	if compile {
		fmt.Fprintf(out, "\n### Compile: parse and compile the policy text (small: %d rules, large: %d rules)\n\n",
			len(scenarios[0].Rules), len(scenarios[1].Rules))
		table(out, comp)
	}
	fmt.Fprintf(progress, "done in %s\n", time.Since(start).Round(time.Second))
	if failed {
		return fmt.Errorf("some measurements failed; see above")
	}
	return nil
}

// check decides every request of the scenario and counts wrong decisions,
// describing each on progress.
func check(progress io.Writer, e scenario.Engine, s *scenario.Scenario, decide scenario.Decide) int {
	bad := 0
	for i, q := range s.Requests {
		d, err := decide(i)
		if err != nil || d.Effect != q.Want {
			bad++
			fmt.Fprintf(progress, "  %s/%s request %d (%s): got %q (rule %q, error %v), want %s\n",
				e.Name(), s.Name, i, q, d.Effect, d.Rule, err, q.Want)
		}
	}
	return bad
}

// median runs the benchmark runs times and returns the run with the median
// time per operation; a failed run has N == 0 and fails the measurement.
func median(progress io.Writer, name string, runs int, f func(*testing.B)) testing.BenchmarkResult {
	results := make([]testing.BenchmarkResult, 0, runs)
	for i := range runs {
		r := testing.Benchmark(f)
		if r.N == 0 {
			fmt.Fprintf(progress, "%s: run %d/%d failed\n", name, i+1, runs)
			return r
		}
		fmt.Fprintf(progress, "%s: run %d/%d: %s ns/op, %d allocs/op (N=%d)\n",
			name, i+1, runs, formatNs(nsPerOp(r)), r.AllocsPerOp(), r.N)
		results = append(results, r)
	}
	slices.SortFunc(results, func(a, b testing.BenchmarkResult) int {
		switch x, y := nsPerOp(a), nsPerOp(b); {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return results[len(results)/2]
}

// nsPerOp is the time per operation without NsPerOp's rounding to whole
// nanoseconds.
func nsPerOp(r testing.BenchmarkResult) float64 {
	if r.N == 0 {
		return 0
	}
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

// table prints rows as markdown, with each engine's ratio to Warden on the
// same scenario.
func table(out io.Writer, rows []row) {
	base := map[string]float64{}
	for _, r := range rows {
		if r.engine == "warden" && r.problem == "" {
			base[r.scenario] = nsPerOp(r.result)
		}
	}
	fmt.Fprintln(out, "| scenario | engine | ns/op | allocs/op | vs warden |")
	fmt.Fprintln(out, "|---|---|---:|---:|---|")
	for _, r := range rows {
		if r.problem != "" {
			fmt.Fprintf(out, "| %s | %s | — | — | %s |\n", r.scenario, r.engine, r.problem)
			continue
		}
		ns := nsPerOp(r.result)
		fmt.Fprintf(out, "| %s | %s | %s | %d | %s |\n", r.scenario, r.engine, formatNs(ns), r.result.AllocsPerOp(), ratio(r.engine, ns, base[r.scenario]))
	}
}

func ratio(engine string, ns, base float64) string {
	switch {
	case engine == "warden":
		return "baseline"
	case base == 0:
		return "—"
	case ns >= base:
		return fmt.Sprintf("%s %s× slower", engine, formatRatio(ns/base))
	}
	return fmt.Sprintf("%s %s× faster", engine, formatRatio(base/ns))
}

func formatRatio(x float64) string {
	if x >= 100 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

// formatNs prints nanoseconds with thousands separators, and one decimal
// below 100 ns.
func formatNs(ns float64) string {
	if ns < 100 {
		return strconv.FormatFloat(ns, 'f', 1, 64)
	}
	return textfmt.Thousands(int64(ns + 0.5))
}

// environment describes where and with what the numbers were measured.
func environment(runs int, benchtime time.Duration) string {
	deps := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			deps[m.Path] = m.Version
		}
	}
	return fmt.Sprintf("%s, %s/%s, GOMAXPROCS=%d; cedar-go %s, opa %s; median of %d runs of testing.Benchmark, %s each.",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0),
		deps["github.com/cedar-policy/cedar-go"], deps["github.com/open-policy-agent/opa"], runs, benchtime)
}
