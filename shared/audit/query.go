package audit

import (
	"context"
	"crypto/ed25519"
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

// VerifyStored verifies a stored trail's chains and checks it against the
// signed digests: the first break or contradiction is reported. Reading
// the store and hashing overlap: one goroutine reads batches of records,
// this one checks them in order.
func VerifyStored(ctx context.Context, src StoredReader, pub ed25519.PublicKey, digests []Digest) (Report, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const batchSize = 256
	batches := make(chan []StoredRecord, 8)
	var readErr error
	go func() {
		defer close(batches)
		batch := make([]StoredRecord, 0, batchSize)
		send := func() error {
			select {
			case batches <- batch:
				batch = make([]StoredRecord, 0, batchSize)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		readErr = src.EachStored(ctx, 0, func(s StoredRecord) error {
			batch = append(batch, s)
			if len(batch) == batchSize {
				return send()
			}
			return nil
		})
		if readErr == nil && len(batch) > 0 {
			readErr = send()
		}
	}()

	rep := Report{Digests: len(digests)}
	var v Verifier
	dc := NewDigestChecker(pub, digests)
	if p, ok := src.(PrunableTrail); ok { // retention may have cut the front
		a, err := p.Pruned(ctx)
		if err != nil {
			return rep, err
		}
		v.Resume(a)
		if err := dc.Skip(a.Seq); err != nil {
			rep.DigestError = err.Error()
			return rep, nil
		}
	}
	stop := func() (Report, error) {
		rep.Records = v.Count
		cancel()
		for range batches { // let the reader finish
		}
		return rep, nil
	}
	for batch := range batches {
		for _, s := range batch {
			if b := v.CheckStored(s.Canonical, s.Hash); b != nil {
				rep.Break = b
				return stop()
			}
			if err := dc.CheckStored(s.Seq, s.Session, s.Hash); err != nil {
				rep.DigestError = err.Error()
				return stop()
			}
		}
	}
	rep.Records = v.Count
	if readErr != nil {
		return rep, readErr
	}
	if err := dc.Done(); err != nil {
		rep.DigestError = err.Error()
		return rep, nil
	}
	rep.OK = true
	return rep, nil
}
