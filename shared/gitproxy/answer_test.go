package gitproxy

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// v2Answer is a protocol v2 fetch answer: its packfile section in side
// band 1, n packets of size bytes each.
func v2Answer(n, size int) []byte {
	var b bytes.Buffer
	b.WriteString(pkt("packfile\n"))
	b.WriteString(pkt("\x02Enumerating objects: 3, done.\n"))
	for i := range n {
		b.WriteString(pkt("\x01" + strings.Repeat(string(rune('a'+i%26)), size)))
	}
	b.WriteString("0000")
	return b.Bytes()
}

// feed writes data to a in random pieces, then ends it, and returns the
// first error.
func feed(a *answerLimiter, data []byte, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		k := min(len(data), 1+r.IntN(700))
		if _, err := a.Write(data[:k]); err != nil {
			return err
		}
		data = data[k:]
	}
	return a.finish()
}

// TestAnswerLimiter: an answer within its bounds passes byte for byte,
// however it is cut into writes; one that would pass its size ends at a
// packet's boundary with a side-band error naming the bound; so does one
// that reaches its deadline; an answer that is not pkt-lines is cut at
// the bound, without a message.
func TestAnswerLimiter(t *testing.T) {
	answer := v2Answer(100, 1000)
	now := time.Unix(1_700_000_000, 0)
	for seed := range uint64(20) {
		var out bytes.Buffer
		a := &answerLimiter{w: &out, max: int64(len(answer)) + maxErrPacket, now: func() time.Time { return now }}
		if err := feed(a, answer, seed); err != nil || !bytes.Equal(out.Bytes(), answer) {
			t.Fatalf("seed %d: within the bound: %v, %d of %d bytes", seed, err, out.Len(), len(answer))
		}

		out.Reset()
		a = &answerLimiter{w: &out, max: 50_000, now: func() time.Time { return now }, sizeWhy: "too large"}
		err := feed(a, answer, seed)
		got := out.String()
		if !errors.Is(err, errAnswerCut) || out.Len() > 50_000 || !strings.HasSuffix(got, pkt("\x03warden: too large\n")) || a.cut != "too large" {
			t.Fatalf("seed %d: over the size: %v, %d bytes, ends %q", seed, err, out.Len(), got[max(0, len(got)-40):])
		}
		// What passed is whole packets: the answer's first bytes.
		if passed := got[:len(got)-len(pkt("\x03warden: too large\n"))]; !strings.HasPrefix(string(answer), passed) || len(passed) < 45_000 {
			t.Fatalf("seed %d: %d bytes passed", seed, len(passed))
		}
	}

	// The deadline: packets pass until deadlineMargin before it.
	var out bytes.Buffer
	clock := time.Unix(1_700_000_000, 0)
	a := &answerLimiter{w: &out, deadline: clock.Add(deadlineMargin + 10*time.Second), now: func() time.Time { return clock }, timeWhy: "too slow"}
	packets := v2Answer(10, 100)
	if _, err := a.Write(packets[:500]); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(11 * time.Second)
	if _, err := a.Write(packets[500:]); !errors.Is(err, errAnswerCut) || !strings.HasSuffix(out.String(), pkt("\x03warden: too slow\n")) {
		t.Fatalf("at the deadline: %v, ends %q", err, out.String()[max(0, out.Len()-30):])
	}

	// A raw pack (no side band): counted and cut, with no message.
	out.Reset()
	raw := append([]byte("PACK\x00\x00\x00\x02"), bytes.Repeat([]byte{7}, 10_000)...)
	a = &answerLimiter{w: &out, max: 5_000, now: time.Now, sizeWhy: "too large"}
	if err := feed(a, raw, 3); !errors.Is(err, errAnswerCut) || out.Len() > 5_000 || strings.Contains(out.String(), "warden") {
		t.Fatalf("raw: %v, %d bytes", err, out.Len())
	}
}

// FuzzAnswerLimiter: whatever the upstream sends, what goes to git is the
// answer's start, whole or up to the bound, then at most the error packet,
// and never more than the bound.
func FuzzAnswerLimiter(f *testing.F) {
	f.Add(v2Answer(3, 50), uint16(200), uint64(1))
	f.Add([]byte("0008NAK\n0010\x01PACKdata..0000"), uint16(20), uint64(2))
	f.Add([]byte("zzzzPACK"), uint16(6), uint64(3))
	f.Fuzz(func(t *testing.T, answer []byte, bound uint16, seed uint64) {
		var out bytes.Buffer
		a := &answerLimiter{w: &out, max: int64(bound), now: time.Now, sizeWhy: "bound"}
		err := feed(a, answer, seed)
		got := out.Bytes()
		if err == nil {
			if !bytes.Equal(got, answer) {
				t.Fatalf("passed %q of %q", got, answer)
			}
			return
		}
		if !errors.Is(err, errAnswerCut) {
			t.Fatalf("error %v", err)
		}
		got = bytes.TrimSuffix(got, []byte(pkt("\x03warden: bound\n")))
		if !bytes.HasPrefix(answer, got) || int64(out.Len()) > int64(bound) && bound > 0 {
			t.Fatalf("sent %q (%d bytes, bound %d) of %q", out.Bytes(), out.Len(), bound, answer)
		}
	})
}
