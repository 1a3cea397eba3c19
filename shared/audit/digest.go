package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Digest is a signed statement of the trail's state, in the manner of
// CloudTrail's digest files: the records from FromSeq to ToSeq exist with
// these hashes — the log's head and every session's head in that range —
// and follow the previous digest. Digests form a chain of their own, so a
// trail cannot be rewritten, truncated or extended in the past without a
// signature by the server's key.
type Digest struct {
	Seq      int64             `json:"seq"` // 1, 2, 3… in the order signed
	Time     time.Time         `json:"time"`
	FromSeq  int64             `json:"from_seq"`
	ToSeq    int64             `json:"to_seq"`
	Head     string            `json:"head"`     // hash of record ToSeq
	Sessions map[string]string `json:"sessions"` // session -> hash of its last record up to ToSeq, for sessions with records in range
	Prev     string            `json:"prev"`     // hash of the previous digest
	// Object is the archive object of a batch digest (see ArchiveObject);
	// nil in the server's periodic digests.
	Object *ArchiveObject `json:"object,omitempty"`
	KeyID  string         `json:"key_id"` // first 16 hex of SHA-256 of the public key
	// Signature is the Ed25519 signature, base64, over the canonical
	// encoding of the digest without it.
	Signature string `json:"signature,omitempty"`
}

// canonicalDigest is the signed form: the digest as JSON with its fields in
// declaration order, session keys sorted, no signature, time in RFC 3339
// UTC with nanoseconds, prefixed by the chain version.
func (d Digest) canonical() []byte {
	d.Signature = ""
	d.Time = d.Time.UTC()
	if d.Sessions == nil {
		d.Sessions = map[string]string{}
	}
	var b bytes.Buffer
	b.WriteString(ChainVersion + ".digest\n")
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(d) // maps are encoded with sorted keys
	return b.Bytes()
}

// Hash is the digest's own hash, which the next digest names as Prev.
func (d Digest) Hash() string {
	sum := sha256.Sum256(d.canonical())
	return hex.EncodeToString(sum[:])
}

// KeyID names a public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign sets the key ID and signs the digest.
func (d *Digest) Sign(key ed25519.PrivateKey) {
	d.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	d.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, d.canonical()))
}

// CheckSignature verifies the digest's signature with pub.
func (d Digest) CheckSignature(pub ed25519.PublicKey) error {
	if d.KeyID != KeyID(pub) {
		return fmt.Errorf("digest %d is signed by key %s, not %s", d.Seq, d.KeyID, KeyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil || !ed25519.Verify(pub, d.canonical(), sig) {
		return fmt.Errorf("digest %d: bad signature", d.Seq)
	}
	return nil
}

// DigestStore keeps digests.
type DigestStore interface {
	// AppendDigest stores d, durably; d.Seq must follow the last one.
	AppendDigest(ctx context.Context, d Digest) error
	// LastDigest returns the newest digest, or ErrNoDigest.
	LastDigest(ctx context.Context) (Digest, error)
	// Digests returns the digests in order.
	Digests(ctx context.Context) ([]Digest, error)
}

// ErrNoDigest is returned by LastDigest before the first digest.
var ErrNoDigest = errors.New("no digest yet")

// Digester signs a digest of the records appended since the last one.
type Digester struct {
	Trail Reader
	Store DigestStore
	Key   ed25519.PrivateKey
	Now   func() time.Time
}

// Run signs a digest every interval while records arrive, until ctx ends,
// and a last one on the way out. Errors are returned by Once and retried on
// the next tick.
func (g *Digester) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if _, err := g.Once(context.WithoutCancel(ctx)); err != nil && onErr != nil {
				onErr(err)
			}
			return
		case <-t.C:
			if _, err := g.Once(ctx); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

// Once signs a digest of the records after the last digest, if there are
// any, and returns it (a zero Digest when there was nothing new).
func (g *Digester) Once(ctx context.Context) (Digest, error) {
	last, err := g.Store.LastDigest(ctx)
	if err != nil && !errors.Is(err, ErrNoDigest) {
		return Digest{}, fmt.Errorf("read the last digest: %w", err)
	}
	d := Digest{Seq: last.Seq + 1, FromSeq: last.ToSeq + 1, Sessions: map[string]string{}}
	if last.Seq > 0 {
		d.Prev = last.Hash()
	}
	after := last.ToSeq
	for {
		recs, err := g.Trail.After(ctx, after, 1000)
		if err != nil {
			return Digest{}, fmt.Errorf("read the trail: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			d.ToSeq, d.Head = r.Seq, r.Hash
			if r.Session != "" {
				d.Sessions[r.Session] = r.Hash
			}
		}
		after = recs[len(recs)-1].Seq
	}
	if d.ToSeq == 0 {
		return Digest{}, nil
	}
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	d.Time = now().UTC()
	d.Sign(g.Key)
	if err := g.Store.AppendDigest(ctx, d); err != nil {
		return Digest{}, fmt.Errorf("store digest %d: %w", d.Seq, err)
	}
	return d, nil
}

// DigestChecker verifies digests against the records they cover, fed in
// order alongside a Verifier: each digest is signed by the key, follows the
// one before, starts where it ended, and names the hashes that the records
// in its range really have.
type DigestChecker struct {
	pub      ed25519.PublicKey
	digests  []Digest
	next     int // index of the digest being filled
	prev     Digest
	sessions map[string]string
	checked  bool // signatures and links of all digests checked
}

// NewDigestChecker checks digests, in order, signed by pub.
func NewDigestChecker(pub ed25519.PublicKey, digests []Digest) *DigestChecker {
	return &DigestChecker{pub: pub, digests: digests, sessions: map[string]string{}}
}

func (c *DigestChecker) checkChain() error {
	prev := Digest{}
	for i, d := range c.digests {
		if err := d.CheckSignature(c.pub); err != nil {
			return err
		}
		switch {
		case d.Seq != int64(i+1):
			return fmt.Errorf("digest %d is out of order (expected %d)", d.Seq, i+1)
		case i > 0 && d.Prev != prev.Hash():
			return fmt.Errorf("digest %d does not follow digest %d", d.Seq, prev.Seq)
		case d.FromSeq != prev.ToSeq+1 || d.ToSeq < d.FromSeq:
			return fmt.Errorf("digest %d covers %d..%d, expected to start at %d", d.Seq, d.FromSeq, d.ToSeq, prev.ToSeq+1)
		}
		prev = d
	}
	c.checked = true
	return nil
}

// Check takes the next record of the trail.
func (c *DigestChecker) Check(r Record) error {
	return c.CheckStored(r.Seq, r.Session, r.Hash)
}

// CheckStored takes the next record of the trail by its seq, session and hash.
func (c *DigestChecker) CheckStored(seq int64, session, hash string) error {
	if !c.checked {
		if err := c.checkChain(); err != nil {
			return err
		}
	}
	if c.next >= len(c.digests) {
		return nil // after the last digest: covered by the chain alone
	}
	d := c.digests[c.next]
	if seq < d.FromSeq || seq > d.ToSeq {
		return fmt.Errorf("digest %d: record %d is missing or changed (signed range %d..%d)", d.Seq, d.FromSeq, d.FromSeq, d.ToSeq)
	}
	if session != "" {
		c.sessions[session] = hash
	}
	if seq < d.ToSeq {
		return nil
	}
	if hash != d.Head {
		return fmt.Errorf("digest %d: record %d is missing or changed (signed head %s, found %s)", d.Seq, d.ToSeq, d.Head, hash)
	}
	if len(c.sessions) != len(d.Sessions) {
		return fmt.Errorf("digest %d: %d sessions signed, %d found", d.Seq, len(d.Sessions), len(c.sessions))
	}
	for _, s := range sortedSessionKeys(d.Sessions) {
		if c.sessions[s] != d.Sessions[s] {
			return fmt.Errorf("digest %d: session %s ends at %s, signed %s", d.Seq, s, orNone(c.sessions[s]), d.Sessions[s])
		}
	}
	c.next++
	clear(c.sessions)
	return nil
}

// Done reports digests whose records never came: a truncated trail.
func (c *DigestChecker) Done() error {
	if !c.checked {
		if err := c.checkChain(); err != nil {
			return err
		}
	}
	if c.next < len(c.digests) {
		d := c.digests[c.next]
		return fmt.Errorf("digest %d: record %d is missing or changed (the trail ends before it)", d.Seq, d.ToSeq)
	}
	return nil
}

// CheckDigests verifies digests against a whole trail held in memory.
func CheckDigests(pub ed25519.PublicKey, digests []Digest, records []Record) error {
	c := NewDigestChecker(pub, digests)
	for _, r := range records {
		if err := c.Check(r); err != nil {
			return err
		}
	}
	return c.Done()
}

func sortedSessionKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
