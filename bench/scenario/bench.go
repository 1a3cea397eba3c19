package scenario

import (
	"fmt"
	"testing"
)

// EvaluateBenchmark returns a benchmark of one decision per iteration,
// cycling through the scenario's requests with decide, which Build made from
// s before any timer started. The benchmark fails if a decision errs or
// differs from the expected effect, so that a broken engine cannot look fast.
func EvaluateBenchmark(e Engine, s *Scenario, decide Decide) func(b *testing.B) {
	reqs := s.Requests
	return func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d, err := decide(i)
			if err != nil || d.Effect != reqs[i].Want {
				b.Fatalf("%s %s: request %d (%s): got %q, %v; want %q", e.Name(), s.Name, i, reqs[i], d.Effect, err, reqs[i].Want)
			}
			if i++; i == len(reqs) {
				i = 0
			}
		}
	}
}

// CompileBenchmark renders the scenario with e, outside any timer, and
// returns a benchmark of parsing and compiling the policy text.
func CompileBenchmark(e Engine, s *Scenario) (func(b *testing.B), error) {
	src, err := e.Render(s)
	if err != nil {
		return nil, fmt.Errorf("render %s for %s: %w", s.Name, e.Name(), err)
	}
	return func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Compile(s, src); err != nil {
				b.Fatal(err)
			}
		}
	}, nil
}
