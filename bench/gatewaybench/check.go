package gatewaybench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/wardenhq/warden/bench/hookbench"
)

// Checker is an http.RoundTripper that passes each request to Base and
// watches its answer's body as the caller reads it: it times the body's
// first byte from the start of the round trip, and compares the body with
// Want. It is safe for concurrent use.
type Checker struct {
	Base http.RoundTripper
	// Want is the body every answer must have.
	Want []byte

	mu  sync.Mutex
	res Checked
}

// Checked is what a Checker saw since it was last taken.
type Checked struct {
	// FirstByte runs from the start of each round trip to the first byte
	// of its answer's body (for an SSE answer, the first event).
	FirstByte hookbench.Histogram
	// Equal and Differ count the bodies read to their end that were and
	// were not Want; Cut counts bodies closed before their end.
	Equal, Differ, Cut int
	// FirstDiff describes the first difference seen.
	FirstDiff string
}

// RoundTrip implements http.RoundTripper.
func (c *Checker) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := c.Base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &checkedBody{ReadCloser: resp.Body, c: c, start: start, status: resp.StatusCode}
	return resp, nil
}

// Take returns what the Checker saw since the last Take, and starts
// afresh.
func (c *Checker) Take() *Checked {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.res
	c.res = Checked{}
	return &r
}

// checkedBody compares the bytes read through it with the Checker's Want.
type checkedBody struct {
	io.ReadCloser
	c      *Checker
	start  time.Time
	status int
	off    int    // bytes read so far
	diff   string // the first difference, if any
	first  bool   // the first byte was timed
	done   bool   // the outcome was counted
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if !b.first {
			b.first = true
			d := time.Since(b.start)
			b.c.mu.Lock()
			b.c.res.FirstByte.Record(d)
			b.c.mu.Unlock()
		}
		if b.diff == "" {
			want := b.c.Want[min(b.off, len(b.c.Want)):min(b.off+n, len(b.c.Want))]
			if !bytes.Equal(p[:n], want) {
				b.diff = fmt.Sprintf("HTTP %d: the answer differs from the upstream's within bytes %d to %d: %.80q", b.status, b.off, b.off+n, p[:n])
			}
		}
		b.off += n
	}
	if err == io.EOF {
		if b.diff == "" && b.off != len(b.c.Want) {
			b.diff = fmt.Sprintf("HTTP %d: the answer has %d bytes, the upstream's %d", b.status, b.off, len(b.c.Want))
		}
		b.count(true)
	}
	return n, err
}

func (b *checkedBody) Close() error {
	b.count(false)
	return b.ReadCloser.Close()
}

// count counts the body's outcome once: read to its end or not.
func (b *checkedBody) count(end bool) {
	if b.done {
		return
	}
	b.done = true
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	r := &b.c.res
	switch {
	case !end:
		r.Cut++
	case b.diff == "":
		r.Equal++
	default:
		r.Differ++
		if r.FirstDiff == "" {
			r.FirstDiff = b.diff
		}
	}
}
