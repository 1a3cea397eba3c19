package audit

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkVerify measures chain verification of records in memory.
// Target (issue 4): at least 500,000 records/s.
func BenchmarkVerify(b *testing.B) {
	t := &testing.T{}
	recs := trail(t, rand.New(rand.NewPCG(9, 9)), 10000)
	b.ResetTimer()
	n := 0
	for b.Loop() {
		var v Verifier
		for _, r := range recs {
			if brk := v.Check(r); brk != nil {
				b.Fatal(brk)
			}
		}
		n += len(recs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
