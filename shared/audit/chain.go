package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// ChainVersion names the canonical encoding that record hashes are computed
// over. A change to the encoding gets a new version; verifiers keep the old.
const ChainVersion = "warden.audit.v1"

// canonicalV1 fixes the field order and spelling of the canonical encoding,
// version 1: a JSON object with exactly these keys in this order, every key
// present, no insignificant white space, strings escaped as encoding/json
// does without HTML escaping, time in RFC 3339 with nanoseconds in UTC, and
// args as compact JSON (null when absent). The record's own hash is not in
// it; the hashes of the records it follows are.
type canonicalV1 struct {
	V             int             `json:"v"`
	Prev          string          `json:"prev"`
	SessionPrev   string          `json:"session_prev"`
	Seq           int64           `json:"seq"`
	ID            string          `json:"id"`
	Time          string          `json:"time"`
	Code          Code            `json:"code"`
	Project       string          `json:"project"`
	Agent         string          `json:"agent"`
	Session       string          `json:"session"`
	ClientSession string          `json:"client_session"`
	Actor         string          `json:"actor"`
	Kind          string          `json:"kind"`
	Action        string          `json:"action"`
	Resource      string          `json:"resource"`
	Args          json.RawMessage `json:"args"`
	Ref           string          `json:"ref"`
	Effect        string          `json:"effect"`
	Rule          string          `json:"rule"`
	Reason        string          `json:"reason"`
	PolicyVersion string          `json:"policy_version"`
	Status        string          `json:"status"`
	DurationMS    int64           `json:"duration_ms"`
}

// Canonical returns the canonical encoding of r (version 1).
func Canonical(r Record) ([]byte, error) {
	c := canonicalV1{
		V: 1, Prev: r.Prev, SessionPrev: r.SessionPrev, Seq: r.Seq, ID: r.ID,
		Time: r.Time.UTC().Format(time.RFC3339Nano), Code: r.Code, Project: r.Project, Agent: r.Agent,
		Session: r.Session, ClientSession: r.ClientSession, Actor: r.Actor, Kind: r.Kind, Action: r.Action,
		Resource: r.Resource, Ref: r.Ref, Effect: r.Effect, Rule: r.Rule, Reason: r.Reason,
		PolicyVersion: r.PolicyVersion, Status: r.Status, DurationMS: r.DurationMS,
	}
	if len(r.Args) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, r.Args); err != nil {
			return nil, fmt.Errorf("canonical args of record %s: %w", r.ID, err)
		}
		c.Args = b.Bytes()
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("canonical encoding of record %s: %w", r.ID, err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// HashCanonical is the record hash: the hex SHA-256 of the chain version, a
// newline, and the canonical encoding.
func HashCanonical(canonical []byte) string {
	h := sha256.New()
	h.Write([]byte(ChainVersion + "\n"))
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
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
	if v.sessions == nil {
		v.sessions = map[string]string{}
	}
	brk := func(problem, expected, found string) *Break {
		return &Break{Seq: r.Seq, ID: r.ID, Problem: problem, Expected: expected, Found: found}
	}
	if r.Seq != v.lastSeq+1 {
		return brk("sequence", fmt.Sprint(v.lastSeq+1), fmt.Sprint(r.Seq))
	}
	c, err := Canonical(r)
	if err != nil {
		return brk("unencodable record: "+err.Error(), "", "")
	}
	if h := HashCanonical(c); h != r.Hash {
		return brk("record hash", h, r.Hash)
	}
	if r.Prev != v.last {
		return brk("link to the previous record", v.last, r.Prev)
	}
	if r.Session != "" {
		want, seen := v.sessions[r.Session]
		if (seen || !v.suffix) && r.SessionPrev != want {
			return brk("link to the previous record of session "+r.Session, want, r.SessionPrev)
		}
		v.sessions[r.Session] = r.Hash
	} else if r.SessionPrev != "" {
		return brk("session link on a record without a session", "", r.SessionPrev)
	}
	v.lastSeq, v.last = r.Seq, r.Hash
	v.Count++
	return nil
}
