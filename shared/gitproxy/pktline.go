// Package gitproxy is Warden's git remote: a smart-HTTP proxy in front of
// the real host that decides every ref a push updates before anything
// reaches the upstream.
package gitproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wardenhq/warden/shared/textfmt"
)

// Packet lengths of the pkt-line format (git's gitprotocol-common): four
// hexadecimal digits of length, the length counting themselves.
const (
	// MaxPktLen is the longest pkt-line: 65,520 bytes with its header.
	MaxPktLen = 65520
	// MaxCommands bounds the ref updates of one push.
	MaxCommands = 1000
	// MaxCommandBytes bounds the command section of a push (its commands,
	// shallow lines and push options), which the proxy holds while it
	// decides.
	MaxCommandBytes = 1 << 20
)

// ZeroID is the object ID of "no object" (SHA-1); a command from it
// creates a ref, one to it deletes a ref.
const ZeroID = "0000000000000000000000000000000000000000"

// Kinds of packets.
const (
	pktData  = iota
	pktFlush // 0000
	pktDelim // 0001
	pktEnd   // 0002: response end
)

// ErrMalformed is what every refusal of malformed input wraps.
var ErrMalformed = errors.New("malformed pkt-line")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// readPkt reads one pkt-line from r into its kind and payload (payload
// aliases buf, which must hold MaxPktLen bytes). A clean end of input
// before the header is io.EOF; one within the packet is
// io.ErrUnexpectedEOF.
func readPkt(r io.Reader, buf []byte) (int, []byte, error) {
	if _, err := io.ReadFull(r, buf[:4]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: a truncated pkt-line header", ErrMalformed)
		}
		return 0, nil, err
	}
	n, err := pktLen(buf[:4])
	if err != nil {
		return 0, nil, err
	}
	switch n {
	case 0:
		return pktFlush, nil, nil
	case 1:
		return pktDelim, nil, nil
	case 2:
		return pktEnd, nil, nil
	}
	if _, err := io.ReadFull(r, buf[4:n]); err != nil {
		return 0, nil, fmt.Errorf("%w: a pkt-line of %d bytes ends early", ErrMalformed, n)
	}
	return pktData, buf[4:n], nil
}

// pktLen reads a pkt-line's length field: 0 (flush), 1 (delim), 2
// (response end), or the packet's length with its field, 4 to MaxPktLen.
func pktLen(head []byte) (int, error) {
	n, err := strconv.ParseUint(string(head), 16, 16)
	if err != nil {
		return 0, malformed("length %q is not four hexadecimal digits", head)
	}
	if n == 3 || n > MaxPktLen {
		return 0, malformed("length %d is out of range", n)
	}
	return int(n), nil
}

// Command is one ref update of a push.
type Command struct {
	Old, New, Ref string
}

// Op is what a command does to its ref: create, update or delete.
func (c Command) Op() string {
	switch {
	case c.Old == ZeroID:
		return "create"
	case c.New == ZeroID:
		return "delete"
	}
	return "update"
}

// Push is the command section of a git-receive-pack request: the ref
// updates, the client's capabilities, and the bytes read, which are
// forwarded unchanged before the pack.
type Push struct {
	Commands     []Command
	Capabilities []string
	// PushOptions are the push options sent after the commands, if the
	// client asked for the capability.
	PushOptions []string
	Raw         []byte
}

// HasCapability reports whether the client asked for capability c.
func (p *Push) HasCapability(c string) bool {
	for _, have := range p.Capabilities {
		if have == c || strings.HasPrefix(have, c+"=") {
			return true
		}
	}
	return false
}

// ReadPush reads the command section of a git-receive-pack request body
// (gitprotocol-pack: shallow lines, then commands, the first carrying the
// capabilities after a NUL, a flush, then push options and a flush if the
// client asked for them), leaving r at the pack. Everything read is kept
// in Push.Raw. The section is at most MaxCommandBytes and MaxCommands. A
// lone flush is a push of no command: git's probe of the remote before a
// large push.
func ReadPush(r io.Reader) (*Push, error) {
	var raw bytes.Buffer
	tee := io.TeeReader(io.LimitReader(r, MaxCommandBytes+1), &raw)
	buf := make([]byte, MaxPktLen)
	p := &Push{}
	next := func() (int, []byte, error) {
		kind, payload, err := readPkt(tee, buf)
		if raw.Len() > MaxCommandBytes {
			return 0, nil, fmt.Errorf("%w: the push's commands take more than %d bytes", ErrMalformed, MaxCommandBytes)
		}
		if errors.Is(err, io.EOF) {
			return 0, nil, fmt.Errorf("%w: the push ends before its commands do", ErrMalformed)
		}
		return kind, payload, err
	}
	// section reads data packets up to a flush, each line to each.
	section := func(what string, each func(line string) error) error {
		for {
			kind, payload, err := next()
			switch {
			case err != nil:
				return err
			case kind == pktFlush:
				return nil
			case kind != pktData:
				return malformed("a special packet among the %s", what)
			}
			if err := each(strings.TrimSuffix(string(payload), "\n")); err != nil {
				return err
			}
		}
	}
	err := section("commands", func(line string) error {
		if rest, ok := strings.CutPrefix(line, "shallow "); ok && len(p.Commands) == 0 {
			if !validID(rest) {
				return malformed("shallow line %q", line)
			}
			return nil
		}
		if len(p.Commands) == 0 {
			var caps string
			line, caps, _ = strings.Cut(line, "\x00")
			p.Capabilities = strings.Fields(caps)
		} else if strings.Contains(line, "\x00") {
			return malformed("capabilities after the first command")
		}
		c, err := parseCommand(line)
		if err != nil {
			return err
		}
		if len(p.Commands) == MaxCommands {
			return fmt.Errorf("%w: more than %d ref updates in one push", ErrMalformed, MaxCommands)
		}
		p.Commands = append(p.Commands, c)
		return nil
	})
	if err == nil && p.HasCapability("push-options") {
		err = section("push options", func(line string) error {
			p.PushOptions = append(p.PushOptions, line)
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	p.Raw = raw.Bytes()
	return p, nil
}

// parseCommand reads "OLD NEW REF".
func parseCommand(line string) (Command, error) {
	parts := strings.Split(line, " ")
	if len(parts) != 3 || !validID(parts[0]) || !validID(parts[1]) || !validRef(parts[2]) {
		return Command{}, malformed("command %q is not \"old-id new-id ref\"", textfmt.Truncate(line, 200))
	}
	if parts[0] == ZeroID && parts[1] == ZeroID {
		return Command{}, malformed("command %q neither creates, updates nor deletes", textfmt.Truncate(line, 200))
	}
	return Command{Old: parts[0], New: parts[1], Ref: parts[2]}, nil
}

// validID accepts a SHA-1 or SHA-256 object ID in lower-case hexadecimal.
func validID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validRef accepts a full ref name by git's check-ref-format rules, as far
// as a proxy needs them: under refs/, printable, no "..", no component
// starting with "." or ending with ".lock", no control characters, spaces
// or any of ~^:?*[\.
func validRef(s string) bool {
	if !strings.HasPrefix(s, "refs/") || len(s) > 1024 || strings.Contains(s, "..") || strings.Contains(s, "//") ||
		strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".") || strings.Contains(s, "@{") {
		return false
	}
	for _, part := range strings.Split(s, "/") {
		if part == "" || strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x7f || strings.IndexByte("~^:?*[\\", c) >= 0 {
			return false
		}
	}
	return true
}
