package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The archive is the trail's long-term, write-once form: the records cut
// into batches, each batch one compressed object with a signed digest of
// its own. The local server writes it into a directory; the AWS archiver
// writes the same objects, under the same keys, into an S3 bucket under
// Object Lock. Within an archive root:
//
//	records/YYYY/MM/DD/<from>-<to>.jsonl.gz   a batch of records
//	digests/<batch>.json                      the batch's signed digest
//	keys/<key id>.json                        the public key that signed it
//
// <from> and <to> are the first and last record Seq, 20 digits; <batch> is
// the batch number, 1, 2, 3…, 12 digits; the date is the first record's,
// in UTC. A batch object is gzip-compressed JSON Lines: each line is one
// record's canonical encoding (see Canonical), exactly the bytes its hash
// is computed over, in Seq order. The digest is a Digest whose Object
// names the batch object and its SHA-256: digests chain as every digest
// does (Prev, FromSeq following the previous ToSeq), so a missing,
// reordered or rewritten batch, or a changed byte in one, is found by
// VerifyArchive. Nothing in an archive is ever overwritten.

// ArchiveObject is the object a batch digest covers.
type ArchiveObject struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"` // hex SHA-256 of the object's bytes as stored (compressed)
	Size   int64  `json:"size"`
}

// ArchiveStore keeps an archive's objects, write-once.
type ArchiveStore interface {
	// Create stores data under key. It must never replace an object: if
	// key exists, it fails with ErrExists whatever the content.
	Create(ctx context.Context, key string, data []byte) error
	// Open reads the object at key; ErrNotArchived if there is none.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the keys under prefix (which ends in "/"), sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Errors of an ArchiveStore.
var (
	ErrExists      = errors.New("archive object exists and is immutable")
	ErrNotArchived = errors.New("no such archive object")
	ErrBadKey      = errors.New("not an archive key")
)

// Limits of what an archive reader accepts.
const (
	// MaxBatchRecords is the most records one batch holds.
	MaxBatchRecords = 100_000
	// MaxArchiveLine is the longest canonical record a batch may hold.
	MaxArchiveLine = 8 << 20
	maxDigestFile  = 1 << 20
)

// BatchKey is the key of the batch of records from..to whose first record
// is dated first.
func BatchKey(first time.Time, from, to int64) string {
	return fmt.Sprintf("records/%s/%020d-%020d.jsonl.gz", first.UTC().Format("2006/01/02"), from, to)
}

// DigestKey is the key of batch n's digest.
func DigestKey(n int64) string { return fmt.Sprintf("digests/%012d.json", n) }

// KeyKey is the key of the public key with this ID.
func KeyKey(keyID string) string { return "keys/" + keyID + ".json" }

// PublicKeyInfo is how a signing key is published: by the server at
// /v1/audit/public-key, and next to exports and archives.
type PublicKeyInfo struct {
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"` // base64 Ed25519 public key
}

// Publish describes pub.
func Publish(pub ed25519.PublicKey) PublicKeyInfo {
	return PublicKeyInfo{KeyID: KeyID(pub), PublicKey: base64.StdEncoding.EncodeToString(pub)}
}

// Key returns the public key, checked against its ID.
func (p PublicKeyInfo) Key() (ed25519.PublicKey, error) {
	pub, err := base64.StdEncoding.DecodeString(p.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("not an Ed25519 public key")
	}
	if KeyID(pub) != p.KeyID {
		return nil, fmt.Errorf("key ID %s does not name this key (%s)", p.KeyID, KeyID(pub))
	}
	return pub, nil
}

// Archiver cuts the trail into batches and archives them.
type Archiver struct {
	Trail Reader
	Store ArchiveStore
	Key   ed25519.PrivateKey
	// BatchRecords is the most records a batch holds (10,000 by default,
	// at most MaxBatchRecords).
	BatchRecords int
	Now          func() time.Time

	last      Digest // the newest batch digest, once known
	published bool   // the public key is in the store
}

// Run archives every interval until ctx ends, and once more on the way
// out; errors go to onErr and are retried on the next tick. after, if not
// nil, is called after each round that ran without error, with the newest
// batch digest.
func (a *Archiver) Run(ctx context.Context, interval time.Duration, onErr func(error), after func(Digest)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	round := func(ctx context.Context) {
		if _, err := a.Once(ctx); err != nil {
			if onErr != nil {
				onErr(err)
			}
		} else if after != nil {
			after(a.last)
		}
	}
	for {
		select {
		case <-ctx.Done():
			round(context.WithoutCancel(ctx))
			return
		case <-t.C:
			round(ctx)
		}
	}
}

// Once archives every record after the last batch, in batches, and
// returns how many batches it wrote.
func (a *Archiver) Once(ctx context.Context) (int, error) {
	if a.last.Seq == 0 {
		last, err := LastBatch(ctx, a.Store)
		if err != nil {
			return 0, err
		}
		a.last = last
	}
	if err := a.publishKey(ctx); err != nil {
		return 0, err
	}
	size := a.BatchRecords
	if size <= 0 {
		size = 10_000
	}
	size = min(size, MaxBatchRecords)
	n := 0
	for {
		recs, err := a.Trail.After(ctx, a.last.ToSeq, size)
		if err != nil {
			return n, fmt.Errorf("archive: read the trail after %d: %w", a.last.ToSeq, err)
		}
		if len(recs) == 0 {
			return n, nil
		}
		d, err := a.batch(ctx, recs)
		if err != nil {
			return n, err
		}
		a.last = d
		n++
	}
}

func (a *Archiver) publishKey(ctx context.Context) error {
	if a.published {
		return nil
	}
	info := Publish(a.Key.Public().(ed25519.PublicKey))
	data, _ := json.MarshalIndent(info, "", "  ")
	err := a.Store.Create(ctx, KeyKey(info.KeyID), append(data, '\n'))
	if err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("archive: publish key %s: %w", info.KeyID, err)
	}
	a.published = true
	return nil
}

// batch archives recs, which follow the last batch, as the next one: the
// object first, then its digest, so that a digest never names an object
// that is not there. After a crash between the two, the object is found
// on the next try and used if it holds exactly these records.
func (a *Archiver) batch(ctx context.Context, recs []Record) (Digest, error) {
	first, last := recs[0], recs[len(recs)-1]
	if first.Seq != a.last.ToSeq+1 {
		return Digest{}, fmt.Errorf("archive: the trail resumes at %d after batch %d, which ended at %d", first.Seq, a.last.Seq, a.last.ToSeq)
	}
	d := Digest{Seq: a.last.Seq + 1, FromSeq: first.Seq, ToSeq: last.Seq, Head: last.Hash, Sessions: map[string]string{}}
	if a.last.Seq > 0 {
		d.Prev = a.last.Hash()
	}
	var content bytes.Buffer
	for i := range recs {
		c, err := Canonical(recs[i])
		if err != nil {
			return Digest{}, fmt.Errorf("archive: %w", err)
		}
		content.Write(c)
		content.WriteByte('\n')
		if recs[i].Session != "" {
			d.Sessions[recs[i].Session] = recs[i].Hash
		}
	}
	key := BatchKey(first.Time, first.Seq, last.Seq)
	object := compress(content.Bytes())
	switch err := a.Store.Create(ctx, key, object); {
	case errors.Is(err, ErrExists):
		existing, err := a.readObject(ctx, key)
		if err != nil {
			return Digest{}, err
		}
		if got, err := decompress(existing); err != nil || !bytes.Equal(got, content.Bytes()) {
			return Digest{}, fmt.Errorf("archive: %s exists with other records than the trail's %d..%d; it is left as it is", key, first.Seq, last.Seq)
		}
		object = existing
	case err != nil:
		return Digest{}, fmt.Errorf("archive: write %s: %w", key, err)
	}
	sum := sha256.Sum256(object)
	d.Object = &ArchiveObject{Key: key, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(object))}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	d.Time = now().UTC()
	d.Sign(a.Key)
	data, _ := json.MarshalIndent(d, "", "  ")
	if err := a.Store.Create(ctx, DigestKey(d.Seq), append(data, '\n')); err != nil {
		return Digest{}, fmt.Errorf("archive: write the digest of batch %d: %w", d.Seq, err)
	}
	return d, nil
}

func (a *Archiver) readObject(ctx context.Context, key string) ([]byte, error) {
	rc, err := a.Store.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("archive: read %s: %w", key, err)
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, MaxBatchRecords*MaxArchiveLine))
}

func compress(b []byte) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.DefaultCompression) // a valid level: no error
	zw.Write(b)                                                 // writes to a bytes.Buffer do not fail
	zw.Close()
	return out.Bytes()
}

func decompress(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// LastBatch returns the digest of the archive's newest batch (a zero
// Digest for an empty archive). Batches are numbered from 1 without gaps,
// so it is found by probing digest keys: doubling, then bisecting.
func LastBatch(ctx context.Context, s ArchiveStore) (Digest, error) {
	exists := func(n int64) (bool, error) {
		_, err := readDigest(ctx, s, n)
		if errors.Is(err, ErrNotArchived) {
			return false, nil
		}
		return err == nil, err
	}
	lo, hi := int64(0), int64(1) // batch lo exists (or is 0), hi is to be probed
	for {
		ok, err := exists(hi)
		if err != nil {
			return Digest{}, err
		}
		if !ok {
			break
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 { // lo exists, hi does not
		mid := lo + (hi-lo)/2
		ok, err := exists(mid)
		if err != nil {
			return Digest{}, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return Digest{}, nil
	}
	return readDigest(ctx, s, lo)
}

func readDigest(ctx context.Context, s ArchiveStore, n int64) (Digest, error) {
	rc, err := s.Open(ctx, DigestKey(n))
	if err != nil {
		return Digest{}, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxDigestFile+1))
	if err != nil {
		return Digest{}, fmt.Errorf("read %s: %w", DigestKey(n), err)
	}
	if len(data) > maxDigestFile {
		return Digest{}, fmt.Errorf("%s: larger than %d bytes", DigestKey(n), maxDigestFile)
	}
	var d Digest
	if err := json.Unmarshal(data, &d); err != nil {
		return Digest{}, fmt.Errorf("%s: not a digest: %w", DigestKey(n), err)
	}
	if d.Seq != n || d.Object == nil {
		return Digest{}, fmt.Errorf("%s: not the digest of batch %d", DigestKey(n), n)
	}
	return d, nil
}

// ArchiveKey reads the public key an archive publishes under keyID.
func ArchiveKey(ctx context.Context, s ArchiveStore, keyID string) (ed25519.PublicKey, error) {
	rc, err := s.Open(ctx, KeyKey(keyID))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", KeyKey(keyID), err)
	}
	defer rc.Close()
	var info PublicKeyInfo
	if err := json.NewDecoder(io.LimitReader(rc, maxDigestFile)).Decode(&info); err != nil {
		return nil, fmt.Errorf("%s: %w", KeyKey(keyID), err)
	}
	pub, err := info.Key()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyKey(keyID), err)
	}
	return pub, nil
}

// VerifyArchive verifies a whole archive against pub: every batch digest's
// signature and its place in the chain of batches, every object's SHA-256,
// and the records inside — hashes, the links of the log and of each
// session, and the heads each digest signs. progress, if not nil, is
// called after each batch.
func VerifyArchive(ctx context.Context, s ArchiveStore, pub ed25519.PublicKey, progress func(batch, records int64)) (Report, error) {
	keys, err := s.List(ctx, "digests/")
	if err != nil {
		return Report{}, err
	}
	rep := Report{}
	var digests []Digest
	for i, key := range keys {
		n := int64(i + 1)
		if key != DigestKey(n) {
			rep.DigestError = fmt.Sprintf("the archive's digests are not numbered 1 to %d: %s where %s was expected", len(keys), key, DigestKey(n))
			return rep, nil
		}
		d, err := readDigest(ctx, s, n)
		if err != nil {
			return Report{}, err
		}
		digests = append(digests, d)
	}
	rep.Digests = len(digests)
	var v Verifier
	dc := NewDigestChecker(pub, digests)
	if err := dc.checkChain(); err != nil {
		rep.DigestError = err.Error()
		return rep, nil
	}
	for _, d := range digests {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		problem, err := verifyBatch(ctx, s, d, &v, dc)
		rep.Records = v.Count
		if err != nil {
			return rep, err
		}
		if problem != nil {
			if b, ok := problem.(*Break); ok {
				rep.Break = b
			} else {
				rep.DigestError = problem.Error()
			}
			return rep, nil
		}
		if progress != nil {
			progress(d.Seq, v.Count)
		}
	}
	if err := dc.Done(); err != nil {
		rep.DigestError = err.Error()
		return rep, nil
	}
	rep.OK = true
	return rep, nil
}

// verifyBatch checks one batch object against its digest and feeds its
// records to v and dc. A problem with the archive's content is returned
// as problem (a *Break for the chains); err is a failure to read it. An
// object that does not have its signed checksum is reported as such, even
// when its records were found wrong first.
func verifyBatch(ctx context.Context, s ArchiveStore, d Digest, v *Verifier, dc *DigestChecker) (problem, err error) {
	rc, err := s.Open(ctx, d.Object.Key)
	if errors.Is(err, ErrNotArchived) {
		return fmt.Errorf("batch %d: object %s is missing", d.Seq, d.Object.Key), nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sum := sha256.New()
	object := &countingReader{r: io.TeeReader(rc, sum)}
	problem = checkBatchRecords(object, d, v, dc)
	if _, err := io.Copy(io.Discard, object); err != nil { // the rest of the object, for its checksum
		return nil, err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != d.Object.SHA256 || object.n != d.Object.Size {
		return fmt.Errorf("batch %d: %s has SHA-256 %s and %d bytes, signed %s and %d bytes", d.Seq, d.Object.Key, got, object.n, d.Object.SHA256, d.Object.Size), nil
	}
	return problem, nil
}

func checkBatchRecords(object io.Reader, d Digest, v *Verifier, dc *DigestChecker) error {
	zr, err := gzip.NewReader(object)
	if err != nil {
		return fmt.Errorf("batch %d: %s is not gzip: %v", d.Seq, d.Object.Key, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), MaxArchiveLine)
	for sc.Scan() {
		// An archive keeps no hash beside a record: its hash is what the
		// next record and the batch digest link to.
		var r storedRead
		r.read(sc.Bytes())
		if r.err != nil {
			return &Break{Seq: v.lastSeq + 1, Problem: fmt.Sprintf("unreadable record in %s: %v", d.Object.Key, r.err)}
		}
		hash := string(r.hash[:])
		if b := v.checkRead(&r, hash); b != nil {
			return b
		}
		if err := dc.CheckStored(r.fields.seq, r.fields.session, hash); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("batch %d: %s: %v", d.Seq, d.Object.Key, err)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
