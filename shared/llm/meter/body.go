package meter

// bodyMeter meters a non-streamed answer: it keeps the body, up to
// MaxBodyBytes, and reads it with its API's JSON reader when Result is
// called. Past the limit it only counts bytes, and Result reports the
// body as oversized with the estimate from its size.
type bodyMeter struct {
	parse  func([]byte) (Result, error)
	buf    []byte
	n      int64
	over   bool
	cached *Result
}

// Write meters p. It never fails and keeps no reference to p.
func (b *bodyMeter) Write(p []byte) (int, error) {
	b.n += int64(len(p))
	b.cached = nil
	if !b.over && len(b.buf)+len(p) <= MaxBodyBytes {
		b.buf = append(b.buf, p...)
	} else if !b.over {
		b.over, b.buf = true, nil
	}
	return len(p), nil
}

// Result reads the body written so far.
func (b *bodyMeter) Result() Result {
	if b.cached != nil {
		return *b.cached
	}
	var r Result
	if b.over {
		r, _ = bodyTooLarge(Result{Bytes: b.n})
	} else {
		r, _ = b.parse(b.buf)
	}
	b.cached = &r
	return r
}
