package gitproxy

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// deadlineMargin is how long before the request's deadline a fetch's
// answer is ended, so that the ending reaches git.
const deadlineMargin = 30 * time.Second

// errAnswerCut ends a fetch's answer that would pass its bounds.
var errAnswerCut = errors.New("the answer was ended at its bound")

// answerLimiter passes git-upload-pack's answer through, packet by packet
// (its pkt-lines), and before a packet that would pass max bytes, or once
// the deadline is near, ends it with a side-band error that git prints
// ("remote error: warden: …") instead of a pack cut short. An answer that
// is not pkt-lines (a client that asked for no side band gets the raw
// pack) is only counted and, at the bound, cut.
type answerLimiter struct {
	w        io.Writer
	max      int64     // bytes allowed; 0: any
	deadline time.Time // zero: none
	now      func() time.Time
	// sizeWhy and timeWhy are the messages for each bound.
	sizeWhy, timeWhy string

	sent     int64
	head     []byte // a packet's length, while incomplete
	left     int    // bytes of the current packet still to pass
	sideband bool   // a side-band packet has passed: an error packet is understood
	raw      bool   // not pkt-lines
	cut      string // why the answer was ended, once it was
}

func (a *answerLimiter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if a.raw {
			if a.max > 0 && a.sent+int64(len(p)) > a.max {
				return 0, a.end(a.sizeWhy, false)
			}
			return n, a.pass(p)
		}
		if a.left > 0 { // inside a packet's payload
			k := min(a.left, len(p))
			if err := a.pass(p[:k]); err != nil {
				return 0, err
			}
			a.left -= k
			p = p[k:]
			continue
		}
		k := min(4-len(a.head), len(p))
		a.head = append(a.head, p[:k]...)
		p = p[k:]
		if len(a.head) < 4 {
			continue
		}
		size, err := pktLen(a.head)
		if err != nil {
			// Not a pkt-line: the rest is passed as it is.
			a.raw = true
			head := a.head
			a.head = nil
			if _, err := a.Write(head); err != nil {
				return 0, err
			}
			continue
		}
		total := max(size, 4) // flush, delim and response-end are 4 bytes
		switch {
		case a.max > 0 && a.sent+int64(total)+maxErrPacket > a.max:
			return 0, a.end(a.sizeWhy, true)
		case !a.deadline.IsZero() && a.now().After(a.deadline.Add(-deadlineMargin)):
			return 0, a.end(a.timeWhy, true)
		}
		if err := a.pass(a.head); err != nil {
			return 0, err
		}
		a.head, a.left = a.head[:0], total-4
		if a.left > 0 && len(p) > 0 && (p[0] == 1 || p[0] == 2) {
			a.sideband = true
		}
	}
	return n, nil
}

// finish passes what is held of a packet's length when the answer ends
// there (an answer cut short upstream reaches git as it came).
func (a *answerLimiter) finish() error {
	if len(a.head) == 0 {
		return nil
	}
	if a.max > 0 && a.sent+int64(len(a.head)) > a.max {
		return a.end(a.sizeWhy, false)
	}
	head := a.head
	a.head = nil
	return a.pass(head)
}

// maxErrPacket is room kept for the error packet.
const maxErrPacket = 1024

func (a *answerLimiter) pass(p []byte) error {
	_, err := a.w.Write(p)
	a.sent += int64(len(p))
	return err
}

// end ends the answer: with an error packet git prints when the answer is
// at a packet's boundary in its side band.
func (a *answerLimiter) end(why string, boundary bool) error {
	a.cut = why
	if boundary && a.sideband {
		msg := "\x03warden: " + why + "\n"
		if len(msg) > maxErrPacket-4 {
			msg = msg[:maxErrPacket-5] + "\n"
		}
		_, _ = io.WriteString(a.w, pkt(msg))
	}
	return errAnswerCut
}

// sizeMessage and timeMessage say why a fetch's answer was ended.
func (l Limit) sizeMessage() string {
	return fmt.Sprintf("this clone or fetch is larger than this git remote can send (%d bytes: %s): fetch less at a time (git clone --depth 1, then git fetch --deepen), or use a Warden that runs as warden serve",
		l.Bytes, l.Why)
}

func timeMessage(d time.Duration) string {
	return fmt.Sprintf("this clone or fetch takes longer than this git remote can send for (%s): fetch less at a time (git clone --depth 1, then git fetch --deepen), or use a Warden that runs as warden serve",
		d.Round(time.Second))
}
