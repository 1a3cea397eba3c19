package audit

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DecodeCanonical decodes a record from its canonical encoding (see
// Canonical) as json.Unmarshal decodes it into a zero Record: for any input
// the two give the same record, or both fail (FuzzDecodeCanonical holds
// them equal). An encoding in canonical form, its keys in their fixed order
// and no white space between tokens, is read field by field in that order,
// several times faster than by reflection; anything else, such as a record
// in another encoding, goes to encoding/json, whose error is returned as
// is. The strings of the record share c's memory.
func DecodeCanonical(c string) (Record, error) {
	var r Record
	if decodeCanonical(c, &r) {
		return r, nil
	}
	var slow Record // not r, which would then escape to the heap on the fast path too
	err := json.Unmarshal([]byte(c), &slow)
	return slow, err
}

// decodeCanonical reads c into r if c is in canonical form, and reports
// whether it was.
func decodeCanonical(c string, r *Record) bool {
	d := &canonicalDecoder{s: c}
	d.lit(`{"v":1,"prev":`)
	r.Prev = d.str()
	d.lit(`,"session_prev":`)
	r.SessionPrev = d.str()
	d.lit(`,"seq":`)
	r.Seq = d.int()
	d.lit(`,"session":`)
	r.Session = d.str()
	d.lit(`,"id":`)
	r.ID = d.str()
	d.lit(`,"time":`)
	r.Time = d.time()
	d.lit(`,"code":`)
	r.Code = Code(d.str())
	d.lit(`,"project":`)
	r.Project = d.str()
	d.lit(`,"agent":`)
	r.Agent = d.str()
	d.lit(`,"client_session":`)
	r.ClientSession = d.str()
	d.lit(`,"actor":`)
	r.Actor = d.str()
	d.lit(`,"kind":`)
	r.Kind = d.str()
	d.lit(`,"action":`)
	r.Action = d.str()
	d.lit(`,"resource":`)
	r.Resource = d.str()
	d.lit(`,"args":`)
	r.Args = d.raw()
	d.lit(`,"ref":`)
	r.Ref = d.str()
	d.lit(`,"effect":`)
	r.Effect = d.str()
	d.lit(`,"rule":`)
	r.Rule = d.str()
	d.lit(`,"reason":`)
	r.Reason = d.str()
	d.lit(`,"policy_version":`)
	r.PolicyVersion = d.str()
	d.lit(`,"status":`)
	r.Status = d.str()
	d.lit(`,"duration_ms":`)
	r.DurationMS = d.int()
	d.lit(`}`)
	return !d.failed && d.i == len(d.s)
}

// canonicalDecoder reads the tokens of a canonical encoding in order. The
// first thing it does not expect sets failed, after which it reads
// nothing.
type canonicalDecoder struct {
	s      string
	i      int
	failed bool
}

func (d *canonicalDecoder) lit(s string) {
	if d.failed || len(d.s)-d.i < len(s) || d.s[d.i:d.i+len(s)] != s {
		d.failed = true
		return
	}
	d.i += len(s)
}

// token returns the JSON string at the read position, quotes included,
// and whether its content can be taken as it is (no escapes, valid UTF-8).
// A control character makes the string, and so the document, invalid.
func (d *canonicalDecoder) token() (tok string, plain bool) {
	if d.failed || d.i >= len(d.s) || d.s[d.i] != '"' {
		d.failed = true
		return "", false
	}
	plain, ascii := true, true
	for j := d.i + 1; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			tok = d.s[d.i : j+1]
			d.i = j + 1
			if !ascii && plain {
				plain = utf8.ValidString(tok)
			}
			return tok, plain
		case c == '\\':
			plain = false
			j++ // the escaped character, which may be a quote
		case c < 0x20:
			d.failed = true
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	d.failed = true
	return "", false
}

// str reads a string. One with escapes is unescaped here if they are the
// one-letter kind; one with \u escapes or invalid UTF-8 is unquoted by
// encoding/json, so that it reads exactly as json.Unmarshal reads it.
func (d *canonicalDecoder) str() string {
	tok, plain := d.token()
	if d.failed {
		return ""
	}
	if plain {
		return tok[1 : len(tok)-1]
	}
	if s, ok := unescape(tok[1 : len(tok)-1]); ok {
		return s
	}
	var s string
	if err := json.Unmarshal([]byte(tok), &s); err != nil {
		d.failed = true
	}
	return s
}

// unescape undoes the escapes \", \\, \/, \b, \f, \n, \r and \t in the
// content of a JSON string. It reports false, leaving the string to
// encoding/json, for any other escape and for invalid UTF-8, which
// encoding/json replaces.
func unescape(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			ascii = ascii && c < utf8.RuneSelf
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", false
		}
		switch s[i] {
		case '"', '\\', '/':
			b.WriteByte(s[i])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default:
			return "", false
		}
	}
	if !ascii && !utf8.ValidString(b.String()) {
		return "", false
	}
	return b.String(), true
}

// time reads a time as encoding/json does: by time.Time's UnmarshalJSON
// on the quoted string.
func (d *canonicalDecoder) time() time.Time {
	tok, _ := d.token()
	var t time.Time
	if d.failed {
		return t
	}
	if err := t.UnmarshalJSON([]byte(tok)); err != nil {
		d.failed = true
	}
	return t
}

// int reads an integer in JSON's grammar (no leading zeros, no fraction or
// exponent) that fits an int64.
func (d *canonicalDecoder) int() int64 {
	if d.failed {
		return 0
	}
	j := d.i
	if j < len(d.s) && d.s[j] == '-' {
		j++
	}
	digits := j
	for j < len(d.s) && '0' <= d.s[j] && d.s[j] <= '9' {
		j++
	}
	if j == digits || d.s[digits] == '0' && j-digits > 1 {
		d.failed = true
		return 0
	}
	n, err := strconv.ParseInt(d.s[d.i:j], 10, 64)
	if err != nil {
		d.failed = true
		return 0
	}
	d.i = j
	return n
}

// raw reads any JSON value as json.RawMessage keeps it: its bytes as they
// are, null included. It finds where the value ends by brackets and
// quotes, then has encoding/json check that what it found is one valid
// value.
func (d *canonicalDecoder) raw() json.RawMessage {
	if d.failed {
		return nil
	}
	end := skipValue(d.s, d.i)
	if end <= d.i {
		d.failed = true
		return nil
	}
	v := []byte(d.s[d.i:end])
	if !json.Valid(v) {
		d.failed = true
		return nil
	}
	d.i = end
	return v
}

// skipValue returns where the JSON value starting at s[i] ends, reading
// no more than it must to find out: a string to its closing quote, an
// object or array to its closing bracket, anything else to the next comma
// or closing bracket. It returns -1 if s ends first. It does not validate.
func skipValue(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '"':
			for j++; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return -1
			}
			if depth == 0 {
				return j + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case ',':
			if depth == 0 {
				return j
			}
		}
	}
	if depth == 0 {
		return len(s)
	}
	return -1
}
