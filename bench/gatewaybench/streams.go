package gatewaybench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/bench/hookbench"
)

// Arrivals reads an SSE body to its end and returns when each event
// arrived, measured from start: the time of the read that brought the
// blank line ending it (events end with "\n\n", as the stand-in sends
// them). Two events that arrive in one read get the same time. It returns
// the body too.
func Arrivals(r io.Reader, start time.Time) ([]time.Duration, []byte, error) {
	var (
		body     []byte
		arrivals []time.Duration
		buf      = make([]byte, 32<<10)
	)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Since(start)
			from := max(len(body)-1, 0) // a "\n\n" may straddle two reads
			body = append(body, buf[:n]...)
			for {
				i := bytes.Index(body[from:], []byte("\n\n"))
				if i < 0 {
					break
				}
				arrivals = append(arrivals, now)
				from += i + 2
			}
		}
		if err == io.EOF {
			return arrivals, body, nil
		}
		if err != nil {
			return arrivals, body, err
		}
	}
}

// Gaps returns the times between consecutive arrivals.
func Gaps(arrivals []time.Duration) []time.Duration {
	var gaps []time.Duration
	for i := 1; i < len(arrivals); i++ {
		gaps = append(gaps, arrivals[i]-arrivals[i-1])
	}
	return gaps
}

// StreamsConfig configures Concurrent.
type StreamsConfig struct {
	// Streams is how many streams are opened.
	Streams int
	// Ramp spreads the opening of the streams evenly over this time, so
	// that the listeners' queues are not flooded at once.
	Ramp time.Duration
	// Want is the body every stream must have.
	Want []byte
}

// StreamsResult is what Concurrent measured.
type StreamsResult struct {
	Started int // streams sent
	OK      int // 2xx answers read to their end, equal to Want
	Errors  int // transport errors, non-2xx answers, cut bodies
	Differ  int // bodies read to their end that were not Want
	// FirstError describes one failure.
	FirstError string
	// PeakOpen is the most streams open at once: answer headers received,
	// body not yet read to its end.
	PeakOpen int
	// Life runs from each stream's send to the end of its body.
	Life hookbench.Histogram
	// Elapsed runs from the first send to the last stream's end.
	Elapsed time.Duration
}

// Concurrent opens cfg.Streams streams to t, evenly over cfg.Ramp, reads
// each to its end and compares it with cfg.Want. It returns once every
// stream has ended; the client's timeout bounds each. An error means the
// configuration was invalid or ctx ended.
func Concurrent(ctx context.Context, c *http.Client, t hookbench.Target, cfg StreamsConfig) (*StreamsResult, error) {
	if cfg.Streams < 1 || cfg.Ramp < 0 {
		return nil, fmt.Errorf("streams %d over %v: want at least 1 stream and a ramp of zero or more", cfg.Streams, cfg.Ramp)
	}
	var (
		mu         sync.Mutex
		res        = &StreamsResult{}
		open, peak atomic.Int64
		wg         sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		res.Errors++
		if res.FirstError == "" {
			res.FirstError = err.Error()
		}
	}
	start := time.Now()
	for i := range cfg.Streams {
		due := start.Add(cfg.Ramp * time.Duration(i) / time.Duration(cfg.Streams))
		select {
		case <-time.After(time.Until(due)):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		res.Started++
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(t.Body(i)))
			if err != nil {
				fail(err)
				return
			}
			for k, v := range t.Header {
				req.Header[k] = v
			}
			sent := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				fail(err)
				return
			}
			defer resp.Body.Close()
			peakAt(&peak, open.Add(1))
			body, err := io.ReadAll(resp.Body)
			open.Add(-1)
			switch {
			case err != nil:
				fail(fmt.Errorf("stream %d: read: %w", i, err))
				return
			case resp.StatusCode/100 != 2:
				fail(fmt.Errorf("stream %d: %s: %.200s", i, resp.Status, body))
				return
			}
			life := time.Since(sent)
			mu.Lock()
			defer mu.Unlock()
			res.Life.Record(life)
			if bytes.Equal(body, cfg.Want) {
				res.OK++
				return
			}
			res.Differ++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("stream %d: %d bytes, not the upstream's %d bytes", i, len(body), len(cfg.Want))
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.PeakOpen = int(peak.Load())
	if err := ctx.Err(); err != nil {
		return res, errors.Join(errors.New("streams cancelled"), err)
	}
	return res, nil
}

func peakAt(peak *atomic.Int64, v int64) {
	for {
		p := peak.Load()
		if v <= p || peak.CompareAndSwap(p, v) {
			return
		}
	}
}
