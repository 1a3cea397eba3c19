package audit

import (
	"context"
	"crypto/ed25519"
	"path"
	"runtime"
	"strings"
	"sync"
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
// signed digests: the first break or contradiction is reported. The
// records are hashed on every core while this goroutine checks them in
// order (see storedScan).
func VerifyStored(ctx context.Context, src StoredReader, pub ed25519.PublicKey, digests []Digest) (Report, error) {
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
	scan := scanStored(ctx, src, 0)
check:
	for b := scan.next(); b != nil; b = scan.next() {
		for i, s := range b.recs {
			if brk := v.checkRead(&b.read[i], s.Hash); brk != nil {
				rep.Break = brk
				break check
			}
			if err := dc.CheckStored(s.Seq, s.Session, s.Hash); err != nil {
				rep.DigestError = err.Error()
				break check
			}
		}
		scan.done(b)
	}
	readErr := scan.stop()
	rep.Records = v.Count
	switch {
	case rep.Break != nil || rep.DigestError != "":
		return rep, nil
	case readErr != nil:
		return rep, readErr
	}
	if err := dc.Done(); err != nil {
		rep.DigestError = err.Error()
		return rep, nil
	}
	rep.OK = true
	return rep, nil
}

// storedBatch is a run of records of a stored trail, in order, with what
// storedRead takes from each.
type storedBatch struct {
	recs []StoredRecord
	read []storedRead
	// ready has a value once read is filled.
	ready chan struct{}
}

// storedScan reads a stored trail for verification. Reading the store,
// hashing and checking overlap: one goroutine reads batches of records in
// order and hands each to the workers, one per core, which hash its
// records and read their chain fields, and to batches, from which the
// checker takes the batches in order, each once the workers are done with
// it. Only the checks that link a record to the ones before it are left to
// the checker, a small share of the work.
type storedScan struct {
	batches <-chan *storedBatch // in order; closed when the reader stops
	err     error               // the reader's, once batches is closed
	free    chan *storedBatch   // done with, for the reader to fill again
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// storedBatchSize is the number of records in a batch, and storedDepth
// the number of batches on their way to the checker at most.
const (
	storedBatchSize = 512
	storedDepth     = 8
)

// scanStored starts reading src after record seq after.
func scanStored(ctx context.Context, src StoredReader, after int64) *storedScan {
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan *storedBatch, storedDepth)
	work := make(chan *storedBatch, storedDepth)
	s := &storedScan{batches: batches, free: make(chan *storedBatch, storedDepth+1), cancel: cancel}
	s.wg.Go(func() {
		defer close(work)
		defer close(batches)
		var b *storedBatch
		send := func() error {
			// To the workers first: a batch the checker has taken is
			// always on its way to being hashed.
			for _, ch := range []chan *storedBatch{work, batches} {
				select {
				case ch <- b:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			b = nil
			return nil
		}
		s.err = src.EachStored(ctx, after, func(r StoredRecord) error {
			if b == nil {
				b = s.batch()
			}
			if b.recs = append(b.recs, r); len(b.recs) == storedBatchSize {
				return send()
			}
			return nil
		})
		if s.err == nil && b != nil {
			s.err = send()
		}
	})
	for range runtime.GOMAXPROCS(0) {
		s.wg.Go(func() {
			for b := range work {
				b.read = b.read[:len(b.recs)]
				for i := range b.recs {
					b.read[i].read(b.recs[i].Canonical)
				}
				b.ready <- struct{}{}
			}
		})
	}
	return s
}

// batch returns a batch to fill: one the checker is done with, or a new one.
func (s *storedScan) batch() *storedBatch {
	select {
	case b := <-s.free:
		return b
	default:
		return &storedBatch{
			recs:  make([]StoredRecord, 0, storedBatchSize),
			read:  make([]storedRead, storedBatchSize),
			ready: make(chan struct{}, 1),
		}
	}
}

// next returns the next batch once its records are read and hashed, or
// nil when the scan has stopped.
func (s *storedScan) next() *storedBatch {
	b, ok := <-s.batches
	if !ok {
		return nil
	}
	<-b.ready
	return b
}

// done hands back a batch the checker has finished with.
func (s *storedScan) done(b *storedBatch) {
	clear(b.recs) // not to keep the records' bytes alive
	b.recs = b.recs[:0]
	select {
	case s.free <- b:
	default:
	}
}

// stop ends the scan, waits for its goroutines and returns the reader's
// error: nil if it read to the end of the trail, the cancellation if stop
// cut it short.
func (s *storedScan) stop() error {
	s.cancel()
	for range s.batches { // let the reader finish
	}
	s.wg.Wait()
	return s.err
}
