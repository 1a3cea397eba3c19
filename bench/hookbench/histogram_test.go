package hookbench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func histogramOf(ds ...time.Duration) *Histogram {
	h := &Histogram{}
	for _, d := range ds {
		h.Record(d)
	}
	return h
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	oneToHundred := make([]time.Duration, 100)
	for i := range oneToHundred {
		oneToHundred[i] = time.Duration(100 - i) // recorded out of order
	}
	tests := []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7 * time.Millisecond}, 50, 7 * time.Millisecond},
		{"one value p100", []time.Duration{7 * time.Millisecond}, 100, 7 * time.Millisecond},
		{"1..100 p50", oneToHundred, 50, 50},
		{"1..100 p90", oneToHundred, 90, 90},
		{"1..100 p99", oneToHundred, 99, 99},
		{"1..100 p99.9", oneToHundred, 99.9, 100},
		{"1..100 p100", oneToHundred, 100, 100},
		{"1..100 p0.5", oneToHundred, 0.5, 1},
		// Nearest rank: the ceil(p/100 × n)-th smallest value.
		{"four p25", []time.Duration{40, 10, 30, 20}, 25, 10},
		{"four p50", []time.Duration{40, 10, 30, 20}, 50, 20},
		{"four p51", []time.Duration{40, 10, 30, 20}, 51, 30},
		{"four p75", []time.Duration{40, 10, 30, 20}, 75, 30},
		{"four p76", []time.Duration{40, 10, 30, 20}, 76, 40},
		{"negative counts as zero", []time.Duration{-5, 3}, 50, 0},
		// A bucket's midpoint is kept within [Min, Max].
		{"clamped to max", []time.Duration{1000, 1001}, 100, 1001},
		{"clamped to min", []time.Duration{1001, 1001}, 50, 1001},
		// The top bucket is open-ended: Max is the best estimate.
		{"top bucket", []time.Duration{time.Hour, 2 * time.Hour}, 50, 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := histogramOf(tt.values...).Percentile(tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestPercentileOutOfRangePanics(t *testing.T) {
	t.Parallel()
	for _, p := range []float64{0, -1, 100.5, math.NaN()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Percentile(%v) did not panic", p)
				}
			}()
			histogramOf(1).Percentile(p)
		}()
	}
}

// TestPercentileRelativeError compares the histogram with exact
// nearest-rank percentiles of sorted samples spread over six decades.
func TestPercentileRelativeError(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	samples := make([]time.Duration, 20000)
	h := &Histogram{}
	for i := range samples {
		// Log-uniform from 1µs to 1s.
		samples[i] = time.Duration(math.Pow(10, 3+6*rng.Float64()))
		h.Record(samples[i])
	}
	slices.Sort(samples)
	for _, p := range []float64{1, 10, 50, 90, 99, 99.9, 100} {
		rank := int(math.Ceil(p / 100 * float64(len(samples))))
		exact := samples[rank-1]
		got := h.Percentile(p)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/(1<<subBits) {
			t.Errorf("p%v = %v, exact %v: relative error %.4f over %.4f", p, got, exact, rel, 1.0/(1<<subBits))
		}
	}
	if h.Min() != samples[0] || h.Max() != samples[len(samples)-1] {
		t.Errorf("min, max = %v, %v; want %v, %v", h.Min(), h.Max(), samples[0], samples[len(samples)-1])
	}
}

// TestBuckets checks that the buckets tile the values without gaps or
// overlaps, in order, each narrower than 2^-subBits of its values.
func TestBuckets(t *testing.T) {
	t.Parallel()
	var values []uint64
	for v := range uint64(1 << (subBits + 3)) {
		values = append(values, v)
	}
	for n := subBits; n < maxBits; n++ {
		p := uint64(1) << n
		values = append(values, p-1, p, p+1, p+p/3)
	}
	slices.Sort(values)
	prev := 0
	for _, v := range values {
		i := bucket(v)
		lo, w := bounds(i)
		if v < lo || v >= lo+w {
			t.Fatalf("value %d in bucket %d = [%d, %d)", v, i, lo, lo+w)
		}
		if w > 1 && float64(w)/float64(lo) > 1.0/(1<<subBits) {
			t.Fatalf("bucket %d = [%d, %d) is wider than 2^-%d of its values", i, lo, lo+w, subBits)
		}
		if i < prev {
			t.Fatalf("value %d in bucket %d, below the bucket %d of a smaller value", v, i, prev)
		}
		prev = i
	}
	// Consecutive buckets meet.
	for i := range numBuckets - 1 {
		lo, w := bounds(i)
		next, _ := bounds(i + 1)
		if lo+w != next {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", i, lo+w, i+1, next)
		}
	}
	if got := bucket(math.MaxUint64); got != numBuckets-1 {
		t.Errorf("bucket(MaxUint64) = %d, want the top bucket %d", got, numBuckets-1)
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	a := histogramOf(5*time.Millisecond, 1*time.Millisecond)
	b := histogramOf(9*time.Millisecond, 3*time.Millisecond, 7*time.Millisecond)
	a.Merge(b)
	a.Merge(&Histogram{})
	want := histogramOf(1*time.Millisecond, 3*time.Millisecond, 5*time.Millisecond, 7*time.Millisecond, 9*time.Millisecond)
	if *a != *want {
		t.Fatalf("merged histogram differs from one that recorded every value")
	}
	if a.Count() != 5 || a.Min() != time.Millisecond || a.Max() != 9*time.Millisecond || a.Mean() != 5*time.Millisecond {
		t.Errorf("count, min, max, mean = %d, %v, %v, %v; want 5, 1ms, 9ms, 5ms", a.Count(), a.Min(), a.Max(), a.Mean())
	}
	var empty Histogram
	empty.Merge(b)
	if empty.Min() != 3*time.Millisecond {
		t.Errorf("min after merging into an empty histogram = %v, want 3ms", empty.Min())
	}
}
