package meter

import "bytes"

// Limits on what a meter holds. They bound its memory whatever the bytes.
const (
	// MaxEventBytes is the largest SSE event (its data) a meter buffers to
	// parse. A larger event is passed over: its bytes are counted, only its
	// first headBytes and last tailBytes are kept, and Result.Oversized
	// counts it.
	MaxEventBytes = 1 << 20
	// headBytes of an oversized event are kept to learn its type.
	headBytes = 4 << 10
	// tailBytes of an oversized event are kept to find a usage object at
	// its end, where the providers put it.
	tailBytes = 64 << 10
	// maxNameBytes bounds an event name; a longer one matches nothing.
	maxNameBytes = 64
	// keepBytes is the buffer capacity kept between events; a larger
	// buffer, grown for one big event, is released after it.
	keepBytes = 256 << 10
)

// event is one dispatched SSE event.
type event struct {
	name []byte // the event field, "" when absent
	// data is the event's data, lines joined by "\n"; for an oversized
	// event only its first headBytes.
	data []byte
	// tail is the last tailBytes of an oversized event's data, else nil.
	tail      []byte
	size      int64 // the data's full length
	oversized bool
}

// handler receives the events of a stream.
type handler interface {
	event(ev *event)
}

// Line states of the splitter.
const (
	inName  = iota // reading a field name (or an empty line)
	atColon        // just after the colon: one space may follow
	inValue        // reading a field's value
)

// Field kinds.
const (
	fieldOther = iota
	fieldData
	fieldEvent
)

// sse splits a byte stream, fed in any chunks, into Server-Sent Events as
// the WHATWG spec defines them: lines end in CRLF, LF or CR; "event" and
// "data" fields are kept, others ignored; an empty line dispatches the
// event if it has data. Memory is bounded by MaxEventBytes plus the tail.
type sse struct {
	state   int
	field   int
	nameBuf [8]byte
	nameLen int // bytes of the field name seen; beyond len(nameBuf) only counted
	skipLF  bool

	name    []byte
	ev      event // the event being dispatched, kept here to spare an allocation
	hasData bool
	buf     []byte // the event's data up to MaxEventBytes, then its head
	size    int64
	over    bool
	ring    []byte // the tail of an oversized event, circular
	ringPos int    // next write position in ring
	ringLen int

	total int64 // every byte written
}

// write feeds p to the splitter, calling h for each complete event.
func (s *sse) write(p []byte, h handler) {
	s.total += int64(len(p))
	for len(p) > 0 {
		if s.skipLF {
			s.skipLF = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		end := bytes.IndexByte(p, '\n')
		seg := p
		if end >= 0 {
			seg = p[:end]
		}
		if cr := bytes.IndexByte(seg, '\r'); cr >= 0 {
			end, seg = cr, p[:cr]
		}
		s.linePart(seg)
		if end < 0 {
			return
		}
		if p[end] == '\r' {
			s.skipLF = true
		}
		s.lineEnd(h)
		p = p[end+1:]
	}
}

// linePart consumes part of a line (no line break in it).
func (s *sse) linePart(seg []byte) {
	if s.state == inName {
		colon := bytes.IndexByte(seg, ':')
		part := seg
		if colon >= 0 {
			part = seg[:colon]
		}
		if s.nameLen < len(s.nameBuf) {
			copy(s.nameBuf[s.nameLen:], part)
		}
		s.nameLen += len(part)
		if colon < 0 {
			return
		}
		s.startValue()
		s.state = atColon
		seg = seg[colon+1:]
	}
	if len(seg) == 0 {
		return
	}
	if s.state == atColon {
		s.state = inValue
		if seg[0] == ' ' {
			seg = seg[1:]
		}
	}
	switch s.field {
	case fieldData:
		s.appendData(seg)
	case fieldEvent:
		if room := maxNameBytes + 1 - len(s.name); room > 0 {
			s.name = append(s.name, seg[:min(room, len(seg))]...)
		}
	}
}

// startValue classifies the field just named and starts its value.
func (s *sse) startValue() {
	s.field = fieldOther
	if s.nameLen > len(s.nameBuf) {
		return
	}
	switch string(s.nameBuf[:s.nameLen]) {
	case "data":
		s.field = fieldData
		if s.hasData {
			s.appendData(newline)
		}
		s.hasData = true
	case "event":
		s.field = fieldEvent
		s.name = s.name[:0]
	}
}

var newline = []byte{'\n'}

func (s *sse) lineEnd(h handler) {
	switch {
	case s.state == inName && s.nameLen == 0:
		s.dispatch(h)
	case s.state == inName:
		s.startValue() // a field name alone: the field with an empty value
	}
	s.state, s.nameLen, s.field = inName, 0, fieldOther
}

// appendData adds to the event's data, keeping at most MaxEventBytes and,
// past that, the head and a ring of the last tailBytes.
func (s *sse) appendData(p []byte) {
	s.size += int64(len(p))
	if !s.over {
		if n := len(s.buf) + len(p); n <= MaxEventBytes {
			if n > cap(s.buf) { // grow, but never past the limit
				buf := make([]byte, len(s.buf), min(max(2*cap(s.buf), n, 512), MaxEventBytes))
				copy(buf, s.buf)
				s.buf = buf
			}
			s.buf = append(s.buf, p...)
			return
		}
		// Over the limit: keep the head, and from now on only the tail.
		s.over = true
		if k := headBytes - len(s.buf); k > 0 { // p is longer than k here
			s.buf = append(s.buf, p[:k]...)
			p = p[k:]
		}
		if s.ring == nil {
			s.ring = make([]byte, tailBytes)
		}
		s.ringPos, s.ringLen = 0, 0
		s.ringWrite(s.buf[headBytes:])
		s.buf = s.buf[:headBytes]
	}
	s.ringWrite(p)
}

func (s *sse) ringWrite(p []byte) {
	if len(p) >= len(s.ring) {
		copy(s.ring, p[len(p)-len(s.ring):])
		s.ringPos, s.ringLen = 0, len(s.ring)
		return
	}
	n := copy(s.ring[s.ringPos:], p)
	copy(s.ring, p[n:])
	s.ringPos = (s.ringPos + len(p)) % len(s.ring)
	s.ringLen = min(s.ringLen+len(p), len(s.ring))
}

// tail returns the ring's content in order.
func (s *sse) tail() []byte {
	out := make([]byte, 0, s.ringLen)
	if s.ringLen == len(s.ring) {
		out = append(out, s.ring[s.ringPos:]...)
	}
	return append(out, s.ring[:s.ringPos]...)
}

func (s *sse) dispatch(h handler) {
	if s.hasData && s.size > 0 {
		s.ev = event{name: s.name, data: s.buf, size: s.size, oversized: s.over}
		if len(s.ev.name) > maxNameBytes {
			s.ev.name = nil
		}
		if s.over {
			s.ev.tail = s.tail()
		}
		h.event(&s.ev)
		s.ev = event{}
	}
	s.resetEvent()
}

func (s *sse) resetEvent() {
	s.name = s.name[:0]
	s.hasData, s.size, s.over = false, 0, false
	s.buf = s.buf[:0]
	if cap(s.buf) > keepBytes {
		s.buf = nil
	}
	s.ring = nil
	s.ringPos, s.ringLen = 0, 0
}

// pending describes the event being received, not yet dispatched: its
// name and data so far, for the estimate of a cut stream.
func (s *sse) pending() (ev event, ok bool) {
	if !s.hasData || s.size == 0 {
		return event{}, false
	}
	return event{name: s.name, data: s.buf, size: s.size, oversized: s.over}, true
}
