package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// MaxResponseBytes bounds what is read of a channel's answer.
const MaxResponseBytes = 1 << 20

// errResponseTooLarge is the read error of an answer past MaxResponseBytes.
var errResponseTooLarge = fmt.Errorf("answer larger than %d bytes", MaxResponseBytes)

// limitedClient returns a copy of c whose response bodies fail past
// MaxResponseBytes, so that no answer, read by this package or by
// slack-go, can exhaust memory.
func limitedClient(c *http.Client) *http.Client {
	out := *c
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	out.Transport = limitTransport{rt}
	return &out
}

type limitTransport struct{ rt http.RoundTripper }

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &limitBody{ReadCloser: resp.Body, left: MaxResponseBytes}
	}
	return resp, err
}

type limitBody struct {
	io.ReadCloser
	left int64
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, errResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// netError returns the cause of a failed round trip without the request
// URL (which may hold a token, as Telegram's does), or nil when err is not
// a transport failure.
func netError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) || ue.Timeout() {
			return errors.New("no answer within the timeout")
		}
		if errors.Is(ue.Err, context.Canceled) {
			return context.Canceled
		}
		var op *net.OpError
		if errors.As(ue.Err, &op) {
			return fmt.Errorf("%s failed: %w", op.Op, op.Err)
		}
		return fmt.Errorf("request failed: %w", ue.Err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return ne
	}
	return nil
}
