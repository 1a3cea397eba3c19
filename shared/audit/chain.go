package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// ChainVersion names the canonical encoding that record hashes are computed
// over. A change to the encoding gets a new version; verifiers keep the old.
const ChainVersion = "warden.audit.v1"

// Canonical returns the canonical encoding of r, version 1: a JSON object
// with exactly these keys in this order, every key present —
//
//	v, prev, session_prev, seq, session, id, time, code, project, agent,
//	client_session, actor, kind, action, resource, args, ref, effect, rule,
//	reason, policy_version, status, duration_ms
//
// — with no insignificant white space, strings escaped as encoding/json
// escapes them without HTML escaping, time in RFC 3339 with nanoseconds in
// UTC, and args as compact JSON (null when absent). The record's own hash
// is not in it; the hashes of the records it follows are. The stores keep
// this encoding as the record, so verification hashes stored bytes.
func Canonical(r Record) ([]byte, error) {
	return appendCanonical(make([]byte, 0, 512), &r)
}

func appendCanonical(b []byte, r *Record) ([]byte, error) {
	str := func(key, val string) {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		b = appendString(b, val)
	}
	b = append(b, `{"v":1`...)
	str("prev", r.Prev)
	str("session_prev", r.SessionPrev)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	str("session", r.Session)
	str("id", r.ID)
	b = append(b, `,"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	str("code", string(r.Code))
	str("project", r.Project)
	str("agent", r.Agent)
	str("client_session", r.ClientSession)
	str("actor", r.Actor)
	str("kind", r.Kind)
	str("action", r.Action)
	str("resource", r.Resource)
	b = append(b, `,"args":`...)
	if len(r.Args) == 0 {
		b = append(b, "null"...)
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, r.Args); err != nil {
			return nil, fmt.Errorf("canonical args of record %s: %w", r.ID, err)
		}
		b = append(b, buf.Bytes()...)
	}
	str("ref", r.Ref)
	str("effect", r.Effect)
	str("rule", r.Rule)
	str("reason", r.Reason)
	str("policy_version", r.PolicyVersion)
	str("status", r.Status)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, r.DurationMS, 10)
	return append(b, '}'), nil
}

// appendString appends s as a JSON string, escaped exactly as encoding/json
// escapes it with HTML escaping off (a test holds the two equal).
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// HashCanonical is the record hash: the hex SHA-256 of the chain version, a
// newline, and the canonical encoding.
func HashCanonical(canonical []byte) string {
	var sum hexHash
	hashCanonical(&sum, canonical)
	return string(sum[:])
}

// hexHash is a record hash in hex, without a string to allocate.
type hexHash [2 * sha256.Size]byte

// hashPrefix is what the record hash covers before the canonical encoding.
var hashPrefix = []byte(ChainVersion + "\n")

// hashCanonical sets sum to the record hash of canonical. It allocates
// nothing: the compiler sees the hash's type and keeps it on the stack.
func hashCanonical(sum *hexHash, canonical []byte) {
	h := sha256.New()
	h.Write(hashPrefix)
	h.Write(canonical)
	var raw [sha256.Size]byte
	hex.Encode(sum[:], h.Sum(raw[:0]))
}

// Link chains r after the records whose hashes are prev (the whole log) and
// sessionPrev (r's session; "" for its first record or a record without a
// session), and sets r.Hash. r.Seq must be set.
func Link(r *Record, prev, sessionPrev string) ([]byte, error) {
	r.Prev, r.SessionPrev = prev, sessionPrev
	if r.Session == "" {
		r.SessionPrev = ""
	}
	c, err := Canonical(*r)
	if err != nil {
		return nil, err
	}
	r.Hash = HashCanonical(c)
	return c, nil
}

// Break is the first place where a trail does not verify.
type Break struct {
	Seq      int64  `json:"seq"`
	ID       string `json:"id"`
	Problem  string `json:"problem"`
	Expected string `json:"expected"`
	Found    string `json:"found"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit trail breaks at seq %d (record %s): %s: expected %s, found %s",
		b.Seq, b.ID, b.Problem, orNone(b.Expected), orNone(b.Found))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Verifier checks records handed to it in Seq order: that each hash is
// right, that each record links to the one before it in the log and in its
// session, and that no Seq is missing or repeated.
type Verifier struct {
	lastSeq  int64
	last     string
	sessions map[string]string
	suffix   bool // verifying from mid-log: earlier session heads are unknown
	// Count is the number of records verified.
	Count int64
}

// Start makes the verifier continue a trail whose record seq has hash
// (verifying a suffix, such as an export that starts mid-log). Sessions
// begun before it are then taken on trust at their first record here.
func (v *Verifier) Start(seq int64, hash string) {
	v.lastSeq, v.last, v.suffix = seq, hash, true
}

// Check verifies the next record.
func (v *Verifier) Check(r Record) *Break {
	c, err := Canonical(r)
	if err != nil {
		return &Break{Seq: r.Seq, ID: r.ID, Problem: "unencodable record: " + err.Error()}
	}
	var sum hexHash
	hashCanonical(&sum, c)
	return v.check(chainFields{seq: r.Seq, id: r.ID, session: r.Session, prev: r.Prev, sessionPrev: r.SessionPrev}, &sum, r.Hash)
}

// CheckStored verifies the next record as a store keeps it: its canonical
// encoding and the hash stored beside it. It hashes the stored bytes and
// reads only the chain fields from them, without decoding the record.
func (v *Verifier) CheckStored(canonical []byte, hash string) *Break {
	var r storedRead
	r.read(canonical)
	return v.checkRead(&r, hash)
}

// storedRead is what checking a stored record takes from its bytes: the
// chain fields and the hash. It depends on the record alone, so that
// VerifyStored works it out for many records at once and then checks them
// in order with checkRead.
type storedRead struct {
	fields chainFields
	err    error // the chain fields could not be read
	hash   hexHash
}

// read reads the chain fields of a canonical encoding and hashes it.
func (r *storedRead) read(canonical []byte) {
	if r.fields, r.err = readChainFields(canonical); r.err == nil {
		hashCanonical(&r.hash, canonical)
	}
}

// checkRead verifies the next record from what read took from it, and the
// hash stored beside it.
func (v *Verifier) checkRead(r *storedRead, stored string) *Break {
	if r.err != nil {
		return &Break{Seq: v.lastSeq + 1, Problem: "unreadable record: " + r.err.Error()}
	}
	return v.check(r.fields, &r.hash, stored)
}

// chainFields are the fields the chain links by.
type chainFields struct {
	seq                            int64
	id, session, prev, sessionPrev string
}

func (v *Verifier) check(f chainFields, computed *hexHash, stored string) *Break {
	if v.sessions == nil {
		v.sessions = map[string]string{}
	}
	brk := func(problem, expected, found string) *Break {
		return &Break{Seq: f.seq, ID: f.id, Problem: problem, Expected: expected, Found: found}
	}
	if f.seq != v.lastSeq+1 {
		return brk("sequence", fmt.Sprint(v.lastSeq+1), fmt.Sprint(f.seq))
	}
	if string(computed[:]) != stored {
		return brk("record hash", string(computed[:]), stored)
	}
	if f.prev != v.last {
		return brk("link to the previous record", v.last, f.prev)
	}
	if f.session != "" {
		want, seen := v.sessions[f.session]
		if (seen || !v.suffix) && f.sessionPrev != want {
			return brk("link to the previous record of session "+f.session, want, f.sessionPrev)
		}
		v.sessions[f.session] = stored
	} else if f.sessionPrev != "" {
		return brk("session link on a record without a session", "", f.sessionPrev)
	}
	v.lastSeq, v.last = f.seq, stored
	v.Count++
	return nil
}

// readChainFields reads v, prev, session_prev, seq, session and id from the
// start of a canonical encoding, where version 1 puts them.
func readChainFields(c []byte) (chainFields, error) {
	var f chainFields
	p := &prefixReader{b: c}
	p.lit(`{"v":1,"prev":`)
	f.prev = p.str()
	p.lit(`,"session_prev":`)
	f.sessionPrev = p.str()
	p.lit(`,"seq":`)
	f.seq = p.int()
	p.lit(`,"session":`)
	f.session = p.str()
	p.lit(`,"id":`)
	f.id = p.str()
	return f, p.err
}

// prefixReader reads the fixed start of a canonical encoding.
type prefixReader struct {
	b   []byte
	i   int
	err error
}

func (p *prefixReader) lit(s string) {
	if p.err == nil && !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.err = fmt.Errorf("not a %s encoding at byte %d", ChainVersion, p.i)
	}
	p.i += len(s)
}

func (p *prefixReader) str() string {
	if p.err != nil { // the first error stands; p.i may be past the end
		return ""
	}
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		p.err = fmt.Errorf("expected a string at byte %d", p.i)
		return ""
	}
	body := p.b[p.i+1:]
	if n := bytes.IndexByte(body, '"'); n >= 0 && bytes.IndexByte(body[:n], '\\') < 0 {
		p.i += n + 2 // no escapes: the usual case
		return string(body[:n])
	}
	j := 0
	for ; j < len(body) && body[j] != '"'; j++ {
		if body[j] == '\\' {
			j++
		}
	}
	if j >= len(body) {
		p.err = fmt.Errorf("unterminated string at byte %d", p.i)
		return ""
	}
	raw := p.b[p.i : p.i+j+2]
	p.i += j + 2
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.err = err
	}
	return s
}

func (p *prefixReader) int() int64 {
	if p.err != nil {
		return 0
	}
	j := p.i
	for j < len(p.b) && (p.b[j] == '-' || p.b[j] >= '0' && p.b[j] <= '9') {
		j++
	}
	n, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		p.err = fmt.Errorf("expected a number at byte %d", p.i)
	}
	p.i = j
	return n
}
