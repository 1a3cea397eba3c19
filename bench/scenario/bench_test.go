package scenario

import "testing"

// BenchmarkEvaluate measures one decision, cycling through each scenario's
// requests; policies and inputs are built before the timer starts.
func BenchmarkEvaluate(b *testing.B) {
	for _, e := range Engines() {
		b.Run(e.Name(), func(b *testing.B) {
			for _, s := range []*Scenario{Small(), Large()} {
				decide, err := Build(e, s)
				if err != nil {
					b.Fatal(err)
				}
				b.Run(s.Name, EvaluateBenchmark(e, s, decide))
			}
		})
	}
}

// BenchmarkCompile measures parsing and compiling each scenario's policy
// text; rendering happens before the timer starts.
func BenchmarkCompile(b *testing.B) {
	for _, e := range Engines() {
		b.Run(e.Name(), func(b *testing.B) {
			for _, s := range []*Scenario{Small(), Large()} {
				f, err := CompileBenchmark(e, s)
				if err != nil {
					b.Fatal(err)
				}
				b.Run(s.Name, f)
			}
		})
	}
}
