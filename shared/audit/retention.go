package audit

import (
	"context"
	"fmt"
	"time"
)

// Anchor is where a trail shortened by retention resumes: the last deleted
// record, and the last deleted record of each session that had any, to
// which the remaining records link. Verification starts from it.
type Anchor struct {
	Seq      int64             `json:"seq"`
	Hash     string            `json:"hash"`
	Sessions map[string]string `json:"sessions,omitempty"`
}

// PrunableTrail is a stored trail that retention may shorten from the front.
type PrunableTrail interface {
	// FirstAtOrAfter returns the Seq of the first record up to limit whose
	// time is t or later, or limit+1 if there is none.
	FirstAtOrAfter(ctx context.Context, t time.Time, limit int64) (int64, error)
	// DigestBoundary returns the largest ToSeq of a signed digest that is
	// at most seq; 0 if there is none.
	DigestBoundary(ctx context.Context, seq int64) (int64, error)
	// Prune deletes the records up to and including through and moves the
	// anchor there. It returns how many records it deleted.
	Prune(ctx context.Context, through int64) (int64, error)
	// Pruned returns the anchor; a zero Anchor if nothing was deleted.
	Pruned(ctx context.Context) (Anchor, error)
}

// Retention deletes from the front of a stored trail the records that are
// both archived and older than Period, and nothing else: no record younger
// than Period, none that is not in an archived batch. It cuts at the end
// of a signed digest, so that what remains verifies against the digests
// from the anchor on. A zero Period keeps everything.
type Retention struct {
	Period time.Duration
	Trail  PrunableTrail
	Now    func() time.Time
}

// Pruning is what one round of retention deleted: Records records, up to
// and including Through, all older than Cutoff.
type Pruning struct {
	Records int64
	Through int64
	Cutoff  time.Time
}

// Once deletes what may be deleted now that the records up to
// archived.ToSeq are archived.
func (r *Retention) Once(ctx context.Context, archived Digest) (Pruning, error) {
	if r.Period <= 0 || archived.ToSeq == 0 {
		return Pruning{}, nil
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	p := Pruning{Cutoff: now().Add(-r.Period)}
	young, err := r.Trail.FirstAtOrAfter(ctx, p.Cutoff, archived.ToSeq)
	if err != nil {
		return p, fmt.Errorf("retention: find records younger than %s: %w", p.Cutoff.Format(time.RFC3339), err)
	}
	if p.Through, err = r.Trail.DigestBoundary(ctx, young-1); err != nil {
		return p, fmt.Errorf("retention: %w", err)
	}
	anchor, err := r.Trail.Pruned(ctx)
	if err != nil {
		return p, fmt.Errorf("retention: %w", err)
	}
	if p.Through <= anchor.Seq {
		return Pruning{}, nil
	}
	p.Records, err = r.Trail.Prune(ctx, p.Through)
	if err != nil {
		return p, fmt.Errorf("retention: delete records up to %d: %w", p.Through, err)
	}
	return p, nil
}

// Resume makes the verifier continue a trail shortened by retention from
// its anchor: every remaining record is checked, including each session's
// link to its deleted part.
func (v *Verifier) Resume(a Anchor) {
	v.lastSeq, v.last, v.suffix = a.Seq, a.Hash, false
	v.sessions = make(map[string]string, len(a.Sessions))
	for s, h := range a.Sessions {
		v.sessions[s] = h
	}
}

// Skip makes the checker start after record seq, the end of a signed
// digest: the digests up to it are still checked for their signatures and
// links, but their records are not expected.
func (c *DigestChecker) Skip(seq int64) error {
	if seq == 0 {
		return nil
	}
	for i, d := range c.digests {
		if d.ToSeq == seq {
			c.next = i + 1
			return nil
		}
	}
	return fmt.Errorf("no signed digest ends at record %d, where the trail was cut", seq)
}
