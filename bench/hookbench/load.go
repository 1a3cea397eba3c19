package hookbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Target is what the load generator sends: one POST per request.
type Target struct {
	// URL receives the requests.
	URL string
	// Header is set on every request. It is shared, not copied: do not
	// change it during a run.
	Header http.Header
	// Body returns the body of request i, numbered from 0 in each run. It
	// is called from several goroutines at once.
	Body func(i int) []byte
}

// Result is what one run measured. Only answered requests (2xx, body read
// in full) have latencies; the rest are counted in Errors.
type Result struct {
	Scheduled int // requests the run was to send (open loop); 0 for closed loop
	Sent      int // requests sent
	OK        int // 2xx answers whose body was read in full
	Errors    int // transport errors, non-2xx answers and bodies cut short
	// Unsent counts scheduled requests never sent because every in-flight
	// slot stayed taken until the run's deadline, or the run was cancelled.
	Unsent int
	// Statuses counts answers by HTTP status; 0 counts transport errors.
	Statuses map[int]int
	// FirstError describes one failure, the first its worker saw, for the
	// report.
	FirstError string

	// Latency runs from the scheduled send time (open loop) or the actual
	// send time (closed loop) to the end of the answer's body.
	Latency Histogram
	// Service runs from the actual send time to the end of the answer.
	Service Histogram
	// Lag is how late each request was sent after its scheduled time: the
	// scheduler's and the in-flight bound's share of Latency. It is zero in
	// closed loop, where a request is due when it is sent.
	Lag Histogram

	// Elapsed runs from the start of the run to the last answer.
	Elapsed time.Duration
}

// Throughput returns answered requests per second over Elapsed.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Merge adds the counts and histograms of o to r. Elapsed becomes the sum
// of both, as for runs made one after the other.
func (r *Result) Merge(o *Result) {
	r.Scheduled += o.Scheduled
	r.Sent += o.Sent
	r.OK += o.OK
	r.Errors += o.Errors
	r.Unsent += o.Unsent
	for s, n := range o.Statuses {
		if r.Statuses == nil {
			r.Statuses = map[int]int{}
		}
		r.Statuses[s] += n
	}
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	r.Latency.Merge(&o.Latency)
	r.Service.Merge(&o.Service)
	r.Lag.Merge(&o.Lag)
	r.Elapsed += o.Elapsed
}

// NewClient returns a keep-alive HTTP client that keeps up to conns idle
// connections to one host, so that a run reuses its connections instead of
// opening one per request, and gives up on a request after timeout.
func NewClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// RateConfig configures an open-loop run.
type RateConfig struct {
	// PerSecond is the request rate.
	PerSecond float64
	// Duration is how long requests are scheduled for: the run sends
	// round(PerSecond × Duration) requests.
	Duration time.Duration
	// MaxInFlight bounds the requests in flight. A request due while all
	// are taken is sent as soon as one ends, and its latency still counts
	// from its scheduled time.
	MaxInFlight int
	// Grace is how long after Duration a request held up by MaxInFlight
	// may still be sent; later ones count as Unsent. The client's timeout
	// bounds each request in flight.
	Grace time.Duration
}

func (c RateConfig) check() error {
	switch {
	case !(c.PerSecond > 0) || math.IsInf(c.PerSecond, 0):
		return fmt.Errorf("rate %v: want a positive number of requests per second", c.PerSecond)
	case c.Duration <= 0:
		return fmt.Errorf("duration %v: want a positive duration", c.Duration)
	case c.MaxInFlight < 1:
		return fmt.Errorf("max in flight %d: want at least 1", c.MaxInFlight)
	case c.Grace < 0:
		return fmt.Errorf("grace %v: want zero or more", c.Grace)
	}
	if n := c.PerSecond * c.Duration.Seconds(); n > 1e8 {
		return fmt.Errorf("%v requests/s for %v: %.0f requests is over the bound of 1e8", c.PerSecond, c.Duration, n)
	}
	return nil
}

// due returns when request i of a run started at start is to be sent.
func (c RateConfig) due(start time.Time, i int) time.Time {
	return start.Add(time.Duration(math.Round(float64(i) * float64(time.Second) / c.PerSecond)))
}

type job struct {
	i   int
	due time.Time
}

// ConstantRate sends requests to t at a constant rate, open loop: request i
// is due i/PerSecond after the start whatever happened to the ones before,
// and its latency runs from that due time. It returns when every request
// sent has ended. An error means the configuration was invalid, or ctx
// ended or the pacing timer failed; in those cases the result holds what
// was measured so far.
func ConstantRate(ctx context.Context, c *http.Client, t Target, cfg RateConfig) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	total := int(math.Round(cfg.PerSecond * cfg.Duration.Seconds()))
	jobs := make(chan job)
	rec := &recorder{r: &Result{Scheduled: total}}
	var wg sync.WaitGroup
	for range cfg.MaxInFlight {
		wg.Go(func() {
			for j := range jobs {
				sent := time.Now()
				rec.add(send(c, t, j.i), j.due, sent)
			}
		})
	}

	sl := newSleeper(ctx)
	defer sl.close()
	var err error
	start := time.Now()
	deadline := time.NewTimer(cfg.Duration + cfg.Grace)
	defer deadline.Stop()
	handed := 0
schedule:
	for ; handed < total; handed++ {
		due := cfg.due(start, handed)
		if err = sl.sleep(ctx, time.Until(due)); err != nil {
			break
		}
		select {
		case jobs <- job{i: handed, due: due}:
		case <-ctx.Done():
			err = ctx.Err()
			break schedule
		case <-deadline.C:
			break schedule
		}
	}
	close(jobs)
	wg.Wait()

	rec.r.Elapsed, rec.r.Unsent = time.Since(start), total-handed
	return rec.r, err
}

// SaturateConfig configures a closed-loop run.
type SaturateConfig struct {
	// Workers send requests, each the next as soon as its last is answered.
	Workers int
	// Duration is how long new requests are started for; those in flight
	// at its end are waited for and counted.
	Duration time.Duration
	// MaxRequests bounds the requests sent in all.
	MaxRequests int
}

// Saturate sends requests to t from cfg.Workers goroutines, each as fast as
// answers come back, for cfg.Duration or until cfg.MaxRequests were sent.
// Latency is measured from each request's actual send time: in a closed
// loop a slow answer delays the next request instead of being charged for
// it, so Throughput is the figure to read. An error means the
// configuration was invalid or ctx ended.
func Saturate(ctx context.Context, c *http.Client, t Target, cfg SaturateConfig) (*Result, error) {
	switch {
	case cfg.Workers < 1:
		return nil, fmt.Errorf("workers %d: want at least 1", cfg.Workers)
	case cfg.Duration <= 0:
		return nil, fmt.Errorf("duration %v: want a positive duration", cfg.Duration)
	case cfg.MaxRequests < 1:
		return nil, fmt.Errorf("max requests %d: want at least 1", cfg.MaxRequests)
	}
	var next atomic.Int64
	rec := &recorder{r: &Result{}}
	start := time.Now()
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				i := int(next.Add(1) - 1)
				if i >= cfg.MaxRequests {
					return
				}
				sent := time.Now()
				rec.add(send(c, t, i), sent, sent)
			}
		})
	}
	wg.Wait()
	rec.r.Elapsed = time.Since(start)
	return rec.r, ctx.Err()
}

// outcome is how one request ended.
type outcome struct {
	status int // 0 if no answer
	err    error
	end    time.Time
}

// send makes request i and reads its answer to the end. Requests are not
// tied to the run's context: a run ends by sending no more, and lets those
// in flight finish within the client's timeout.
func send(c *http.Client, t Target, i int) outcome {
	req, err := http.NewRequest(http.MethodPost, t.URL, bytes.NewReader(t.Body(i)))
	if err != nil {
		return outcome{err: err, end: time.Now()}
	}
	for k, v := range t.Header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return outcome{err: err, end: time.Now()}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	o := outcome{status: resp.StatusCode, err: err, end: time.Now()}
	if o.err == nil && resp.StatusCode/100 != 2 {
		o.err = errors.New(resp.Status)
	}
	return o
}

// recorder collects the outcomes of a run's requests from its goroutines.
// One lock suffices: it is held for a few counter updates per request,
// against tens of microseconds of HTTP work.
type recorder struct {
	mu sync.Mutex
	r  *Result
}

// add counts one request that was due at due and sent at sent.
func (rec *recorder) add(o outcome, due, sent time.Time) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.r
	r.Sent++
	r.Lag.Record(sent.Sub(due))
	if r.Statuses == nil {
		r.Statuses = map[int]int{}
	}
	r.Statuses[o.status]++
	if o.err != nil {
		r.Errors++
		if r.FirstError == "" {
			r.FirstError = o.err.Error()
		}
		return
	}
	r.OK++
	r.Latency.Record(o.end.Sub(due))
	r.Service.Record(o.end.Sub(sent))
}
