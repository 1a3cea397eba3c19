package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

// ingested is the outcome of the ingest phase.
type ingested struct {
	records  int64         // appended and acknowledged
	elapsed  time.Duration // from the first Append to the last acknowledgement
	stopped  string        // why the ingest stopped before the plan was done, if it did
	chunk    int64         // records per chunk
	chunkAt  []time.Duration
	latency  []time.Duration // a sample of Append latencies, sorted
	complete int             // sessions that got all their planned records
	// busy and busyRecords are when the last session was handed to an
	// appender and how many records were in by then: until that moment
	// every appender had a session; after it their number falls as the
	// last sessions end, and so does the rate. Zero if the ingest stopped
	// first.
	busy        time.Duration
	busyRecords int64
}

// sustained returns the rate while every appender had a session, and the
// slowest chunk completed in that time; the whole ingest's if it stopped
// before the sessions ran out.
func (in *ingested) sustained() (rate, slowest float64) {
	n, d := in.records, in.elapsed
	if in.busy > 0 {
		n, d = in.busyRecords, in.busy
	}
	rate, slowest = float64(n)/d.Seconds(), float64(n)/d.Seconds()
	for i, r := range in.chunkRates() {
		if in.busy > 0 && in.chunkAt[i] > in.busy {
			break
		}
		slowest = min(slowest, r)
	}
	return rate, slowest
}

// chunkRates returns the records/s of each full chunk.
func (in *ingested) chunkRates() []float64 {
	var out []float64
	prev := time.Duration(0)
	for _, at := range in.chunkAt {
		if at == 0 {
			break
		}
		out = append(out, float64(in.chunk)/(at-prev).Seconds())
		prev = at
	}
	return out
}

// latencyEvery is how often an Append's latency is kept: one in this many.
const latencyEvery = 8

// ingest appends every planned session's records through the durable
// Append, from appenders goroutines at once. Each goroutine takes the next
// session and appends its records one after another, each waiting for its
// commit as an agent's hook call does; many sessions at once are what fills
// the group commit's batches. It stops early, between records, once budget
// has passed or guard, called every second, gives a reason to stop (such as
// the disk filling up); status, called with each progress line, adds to it.
func ingest(ctx context.Context, sink audit.Sink, sessions []*session, appenders int, budget time.Duration,
	guard, status func() string, progress io.Writer) (*ingested, error) {
	var total int64
	for _, s := range sessions {
		total += int64(s.size)
	}
	res := &ingested{chunk: chunkSize(total)}
	res.chunkAt = make([]time.Duration, total/res.chunk)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var count atomic.Int64
	start := time.Now()
	queue := make(chan *session)
	quit, fed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(fed)
		defer close(queue)
		for _, s := range sessions {
			select {
			case queue <- s:
			case <-quit:
				return
			}
		}
		res.busy, res.busyRecords = time.Since(start), count.Load()
	}()

	var stop atomic.Bool
	var mu sync.Mutex
	policyVersion := audit.NewID() + audit.NewID() // a 64-hex policy hash

	done := make(chan struct{})
	go report(progress, &count, total, start, status, done)
	watched := make(chan string, 1)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				watched <- ""
				return
			case <-t.C:
				why := guard()
				if why == "" && time.Since(start) >= budget {
					why = fmt.Sprintf("the %s time budget ran out", budget)
				}
				if why != "" {
					stop.Store(true)
					<-done
					watched <- why
					return
				}
			}
		}
	}()

	var wg sync.WaitGroup
	for range appenders {
		wg.Go(func() {
			var lat []time.Duration
			defer func() {
				mu.Lock()
				res.latency = append(res.latency, lat...)
				mu.Unlock()
			}()
			for s := range queue {
				for r := range s.records(policyVersion) {
					if stop.Load() || ctx.Err() != nil {
						return
					}
					t := time.Now()
					if _, err := sink.Append(ctx, r); err != nil {
						cancel(fmt.Errorf("session %s, record %d: %w", s.id, s.written+1, err))
						return
					}
					now := time.Now()
					s.written++
					n := count.Add(1)
					if n%latencyEvery == 0 {
						lat = append(lat, now.Sub(t))
					}
					if n%res.chunk == 0 {
						res.chunkAt[n/res.chunk-1] = now.Sub(start)
					}
				}
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	close(quit)
	<-fed
	close(done)
	why := <-watched
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	res.records = count.Load()
	if res.records < total {
		res.stopped = why
	}
	for _, s := range sessions {
		if s.written == s.size {
			res.complete++
		}
	}
	slices.Sort(res.latency)
	fmt.Fprintf(progress, "ingest: %s records in %s, %s/s\n", thousands(res.records), res.elapsed.Round(time.Second), thousands(int64(float64(res.records)/res.elapsed.Seconds())))
	if res.stopped != "" {
		fmt.Fprintf(progress, "ingest: stopped early: %s\n", res.stopped)
	}
	return res, nil
}

// chunkSize is 1,000,000 records, or a tenth of a smaller trail.
func chunkSize(total int64) int64 {
	if total >= 2_000_000 {
		return 1_000_000
	}
	return max(total/10, 1)
}

// report prints the ingest's progress every few seconds until done.
func report(w io.Writer, count *atomic.Int64, total int64, start time.Time, status func() string, done <-chan struct{}) {
	const every = 10 * time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-done:
			return
		case <-t.C:
			n := count.Load()
			elapsed := time.Since(start)
			overall := float64(n) / elapsed.Seconds()
			eta := "?"
			if overall > 0 {
				eta = (time.Duration(float64(total-n)/overall) * time.Second).Round(time.Second).String()
			}
			fmt.Fprintf(w, "ingest: %s / %s records (%.1f%%), %s/s over the last %s, %s/s overall, %s elapsed, about %s to go; %s\n",
				thousands(n), thousands(total), 100*float64(n)/float64(total), thousands(int64(float64(n-last)/every.Seconds())),
				every, thousands(int64(overall)), elapsed.Round(time.Second), eta, status())
			last = n
		}
	}
}
