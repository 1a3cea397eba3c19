// Package hookbench is an HTTP load generator for measuring the round trip
// of Warden's hook decision endpoint against a baseline server. It has two
// modes:
//
//   - ConstantRate is open-loop: requests are scheduled at fixed intervals
//     whatever the answers, and each latency is measured from the request's
//     scheduled send time, so that a slow answer that holds up later
//     requests is charged to them too (no coordinated omission).
//   - Saturate is closed-loop: a fixed number of workers send as fast as
//     answers come back, for the throughput at saturation.
//
// Latencies go into a log-linear Histogram with bounded memory and a
// relative error below 1/128.
package hookbench

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: every power of two is split into
// 2^subBits buckets, so a bucket's width is below 1/2^subBits of its values.
const subBits = 7

// maxBits bounds the values the histogram tells apart: durations of 2^40 ns
// (about 18 minutes) and more share the top bucket. Max stays exact.
const maxBits = 40

const numBuckets = (maxBits - subBits + 1) << subBits

// Histogram counts durations in log-linear buckets: values below 2^subBits
// ns exactly, larger ones with a relative error below 2^-subBits. Min, max
// and mean are exact. The zero value is empty and ready to use. A
// Histogram is not safe for concurrent use; give each goroutine its own and
// Merge them.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64 // ns; float so that it cannot overflow
	min    time.Duration
	max    time.Duration
}

// bucket returns the index of the bucket holding v ns.
func bucket(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	n := bits.Len64(v)
	if n > maxBits {
		return numBuckets - 1
	}
	shift := n - subBits - 1
	// v>>shift keeps the top subBits+1 bits: a value in [2^subBits, 2^(subBits+1)).
	return (n-subBits)<<subBits + int(v>>shift) - 1<<subBits
}

// bounds returns the smallest value of bucket i and the bucket's width.
func bounds(i int) (lo, width uint64) {
	if i < 1<<subBits {
		return uint64(i), 1
	}
	group := i >> subBits // n - subBits, as in bucket
	shift := group - 1
	top := uint64(i&(1<<subBits-1)) + 1<<subBits
	return top << shift, 1 << shift
}

// Record adds one duration. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucket(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
	h.sum += float64(d)
}

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest duration recorded, 0 if none.
func (h *Histogram) Min() time.Duration { return h.min }

// Max returns the largest duration recorded, 0 if none.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean returns the mean duration, 0 if none.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100): the
// smallest recorded value such that at least p% of the values are at or
// below it, as the midpoint of its bucket, kept within [Min, Max] (Max for
// the open-ended top bucket, from 2^40 ns up). It
// returns 0 for an empty histogram and panics on p outside (0, 100].
func (h *Histogram) Percentile(p float64) time.Duration {
	if !(p > 0 && p <= 100) {
		panic(fmt.Sprintf("hookbench: percentile %v outside (0, 100]", p))
	}
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == numBuckets-1 {
				return h.max // the top bucket is open-ended
			}
			lo, w := bounds(i)
			v := time.Duration(lo + (w-1)/2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max // not reached: the counts add up to n
}
