package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path"
	"strings"
	"time"
)

// Filter selects audit records. Empty fields select everything.
type Filter struct {
	Session string
	Project string
	Agent   string
	// Action is a glob (path.Match syntax), e.g. "tool:*" or "git:push".
	Action string
	// Effect is allow, deny or approve; "denied" selects every refusal
	// (deny, approve and request.refused).
	Effect string
	Rule   string
	Code   Code
	Since  time.Time // inclusive
	Until  time.Time // exclusive
}

// Querier finds records.
type Querier interface {
	// Query returns up to limit records after seq after that match f, in order.
	Query(ctx context.Context, f Filter, after int64, limit int) ([]Record, error)
}

// Match reports whether r passes the filter.
func (f *Filter) Match(r *Record) bool {
	switch {
	case f.Session != "" && r.Session != f.Session,
		f.Project != "" && r.Project != f.Project,
		f.Agent != "" && r.Agent != f.Agent,
		f.Rule != "" && r.Rule != f.Rule,
		f.Code != "" && r.Code != f.Code,
		!f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	}
	if f.Action != "" {
		if ok, err := path.Match(f.Action, r.Action); err != nil || !ok {
			return false
		}
	}
	switch f.Effect {
	case "":
	case "denied":
		return r.Code == DecisionDeny || r.Code == DecisionApproval || r.Code == RequestRefused
	default:
		return r.Effect == f.Effect && strings.HasPrefix(string(r.Code), "decision.")
	}
	return true
}

// StoredRecord is a record as a store keeps it: its canonical encoding and
// the hash beside it, with the columns verification needs.
type StoredRecord struct {
	Seq       int64
	Session   string
	Canonical []byte
	Hash      string
}

// StoredReader walks a trail as stored, for fast verification.
type StoredReader interface {
	EachStored(ctx context.Context, after int64, fn func(StoredRecord) error) error
}

// Report is the outcome of verifying a trail.
type Report struct {
	OK      bool   `json:"ok"`
	Records int64  `json:"records"`
	Digests int    `json:"digests"`
	Break   *Break `json:"break,omitempty"`
	// DigestError says which signed digest the trail contradicts.
	DigestError string `json:"digest_error,omitempty"`
}

// errStop ends a walk early.
var errStop = errors.New("stop")

// VerifyStored verifies a stored trail's chains and checks it against the
// signed digests: the first break or contradiction is reported.
func VerifyStored(ctx context.Context, src StoredReader, pub ed25519.PublicKey, digests []Digest) (Report, error) {
	rep := Report{Digests: len(digests)}
	var v Verifier
	dc := NewDigestChecker(pub, digests)
	err := src.EachStored(ctx, 0, func(s StoredRecord) error {
		if b := v.CheckStored(s.Canonical, s.Hash); b != nil {
			rep.Break = b
			return errStop
		}
		if err := dc.CheckStored(s.Seq, s.Session, s.Hash); err != nil {
			rep.DigestError = err.Error()
			return errStop
		}
		return nil
	})
	rep.Records = v.Count
	switch {
	case errors.Is(err, errStop):
		return rep, nil
	case err != nil:
		return rep, err
	}
	if err := dc.Done(); err != nil {
		rep.DigestError = err.Error()
		return rep, nil
	}
	rep.OK = true
	return rep, nil
}
