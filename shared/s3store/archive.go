// Package s3store holds Warden's adapters on Amazon S3: the audit archive
// in a bucket under Object Lock (Archive, an audit.ArchiveStore), and the
// reading of the policy bucket's objects (ReadObject, and Getter, a signed
// GET without the S3 client). The policy's fetcher for policyload, which
// uses them, is in shared/s3policy.
package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/wardenhq/warden/shared/audit"
)

// ArchiveAPI is the part of the S3 API an Archive uses; *s3.Client has it.
type ArchiveAPI interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObjectLockConfiguration(context.Context, *s3.GetObjectLockConfigurationInput, ...func(*s3.Options)) (*s3.GetObjectLockConfigurationOutput, error)
}

var _ ArchiveAPI = (*s3.Client)(nil)

// ArchiveReadAPI is the part of the S3 API a read-only Archive uses; the
// S3 client and Getter have it.
type ArchiveReadAPI interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

var _ ArchiveReadAPI = (*Getter)(nil)

// ErrReadOnly is the error of Create and Check on an archive opened with
// NewArchiveReader.
var ErrReadOnly = errors.New("s3store: this archive was opened read-only")

// Limits of the archive store.
const (
	// DefaultMaxObjectBytes is the largest object Open reads unless
	// Archive.MaxObjectBytes says otherwise: a batch of 10,000 records
	// compresses to a few megabytes, and even the largest the archiver can
	// write (MaxBatchRecords records of hook inputs near their 1 MB limit)
	// stays below it.
	DefaultMaxObjectBytes = 1 << 30
	// MaxListKeys is the most keys List returns: at one digest a minute,
	// about 19 years of archive.
	MaxListKeys = 10_000_000
	// MaxRetention is the longest retention S3 Object Lock accepts.
	MaxRetention = 100 * 365 * 24 * time.Hour
	// maxKeyBytes matches audit.DirStore's limit, so that both stores take
	// the same keys.
	maxKeyBytes = 512
	// conflictRetries bounds the retries of a write that S3 refused with
	// 409 ConditionalRequestConflict (another write of the key in flight).
	conflictRetries = 4
)

// Archive is an audit.ArchiveStore in an S3 bucket with Object Lock, the
// AWS form of the archive that `warden serve` keeps in a directory (same
// keys, same bytes; see audit.Archiver).
//
// Every object is written once and never replaced. Create puts it with
// If-None-Match: "*", so S3 refuses the write (412 Precondition Failed,
// returned as audit.ErrExists) if the key already has an object — the
// check and the write are one atomic step on the server, so two archivers
// racing for a key cannot both win. A write whose answer was lost and that
// the SDK retried meets its own object and reports ErrExists too; the
// archiver then compares the object with the batch, as after a crash. A
// 409 ConditionalRequestConflict, S3's answer while another write of the
// key is in flight, is retried a few times.
//
// Each object carries its own Object Lock retention in COMPLIANCE mode,
// until the time of its write plus the Archive's retention: no one, the
// root account included, can delete that version or shorten its retention
// until then, whatever the bucket's default says. And each is sent with
// its SHA-256 (x-amz-checksum-sha256), which S3 checks against the bytes
// it received before it stores them; Open asks for the stored checksum
// back and the SDK checks the bytes read against it.
//
// The bucket must have Object Lock enabled (Check says whether it does;
// without it every Create fails). The functions writing to it need
// s3:PutObject and s3:PutObjectRetention, readers s3:GetObject and
// s3:ListBucket (without ListBucket, S3 answers a read of a missing key
// with 403, not 404, and the archiver cannot find where the archive ends);
// no one should hold s3:DeleteObject: in a versioned bucket a delete
// without a version ID adds a delete marker that hides the locked version
// (which stays, and can be read by its version ID) — audit.VerifyArchive
// reports such an object as missing.
type Archive struct {
	client    ArchiveAPI     // nil when read-only
	read      ArchiveReadAPI // Open and List
	bucket    string
	retention time.Duration
	now       func() time.Time
	pageSize  int32 // ListObjectsV2 page size; 0 for S3's default (1,000)

	// MaxObjectBytes bounds what Open reads of one object: a larger one
	// fails, at once if S3 announces its size, else when the limit is
	// passed. DefaultMaxObjectBytes unless set.
	MaxObjectBytes int64
}

var _ audit.ArchiveStore = (*Archive)(nil)

// NewArchive returns the archive in bucket, whose objects client writes
// with COMPLIANCE retention for retention from their write (more than 0,
// at most MaxRetention). A deployment passes the bucket's own default
// retention (BucketRetention), so that the duration is set in one place,
// the stack, and still travels with each object.
func NewArchive(client ArchiveAPI, bucket string, retention time.Duration) (*Archive, error) {
	switch {
	case client == nil:
		return nil, errors.New("s3store: archive: no S3 client")
	case bucket == "":
		return nil, errors.New("s3store: archive: no bucket name")
	case retention <= 0:
		return nil, fmt.Errorf("s3store: archive s3://%s: retention %v: it must be more than 0", bucket, retention)
	case retention > MaxRetention:
		return nil, fmt.Errorf("s3store: archive s3://%s: retention %v is more than S3's limit of 100 years", bucket, retention)
	}
	return &Archive{client: client, read: client, bucket: bucket, retention: retention, now: time.Now, MaxObjectBytes: DefaultMaxObjectBytes}, nil
}

// NewArchiveReader returns the archive in bucket for reading only (Open,
// List): what the admin API serves. Create and Check fail with
// ErrReadOnly.
func NewArchiveReader(client ArchiveReadAPI, bucket string) (*Archive, error) {
	switch {
	case client == nil:
		return nil, errors.New("s3store: archive: no S3 client")
	case bucket == "":
		return nil, errors.New("s3store: archive: no bucket name")
	}
	return &Archive{read: client, bucket: bucket, MaxObjectBytes: DefaultMaxObjectBytes}, nil
}

// Check reads the bucket's Object Lock configuration and fails, saying
// why, unless Object Lock is enabled on it: a function calls it at start
// so that a misconfigured deployment fails there, with a clear reason,
// rather than at its first batch.
func (a *Archive) Check(ctx context.Context) error {
	if a.client == nil {
		return ErrReadOnly
	}
	_, err := lockConfiguration(ctx, a.client, a.bucket)
	return err
}

// BucketRetention returns the default retention of bucket's Object Lock
// configuration, which must be in COMPLIANCE mode: the duration to pass
// to NewArchive. Years count as calendar years from now.
func BucketRetention(ctx context.Context, client ArchiveAPI, bucket string) (time.Duration, error) {
	conf, err := lockConfiguration(ctx, client, bucket)
	if err != nil {
		return 0, err
	}
	if conf.Rule == nil || conf.Rule.DefaultRetention == nil {
		return 0, fmt.Errorf("s3store: bucket %s has Object Lock but no default retention", bucket)
	}
	r := conf.Rule.DefaultRetention
	if r.Mode != types.ObjectLockRetentionModeCompliance {
		return 0, fmt.Errorf("s3store: bucket %s: default retention mode is %q, not COMPLIANCE", bucket, r.Mode)
	}
	now := time.Now()
	var d time.Duration
	switch {
	case r.Days != nil && *r.Days > 0:
		d = now.AddDate(0, 0, int(*r.Days)).Sub(now)
	case r.Years != nil && *r.Years > 0:
		d = now.AddDate(int(*r.Years), 0, 0).Sub(now)
	default:
		return 0, fmt.Errorf("s3store: bucket %s: default retention has no period", bucket)
	}
	return min(d, MaxRetention), nil
}

func lockConfiguration(ctx context.Context, client ArchiveAPI, bucket string) (*types.ObjectLockConfiguration, error) {
	notLocked := fmt.Errorf("s3store: bucket %s does not have Object Lock enabled: the audit archive must be write-once", bucket)
	out, err := client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(bucket)})
	if errorCode(err) == "ObjectLockConfigurationNotFoundError" {
		return nil, notLocked
	}
	if err != nil {
		return nil, fmt.Errorf("s3store: read the Object Lock configuration of bucket %s: %w", bucket, err)
	}
	if out.ObjectLockConfiguration == nil || out.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		return nil, notLocked
	}
	return out.ObjectLockConfiguration, nil
}

// Create implements audit.ArchiveStore.
func (a *Archive) Create(ctx context.Context, key string, data []byte) error {
	if a.client == nil {
		return ErrReadOnly
	}
	if err := checkKey(key); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	in := &s3.PutObjectInput{
		Bucket:                    aws.String(a.bucket),
		Key:                       aws.String(key),
		ContentLength:             aws.Int64(int64(len(data))),
		ContentType:               aws.String(contentType(key)),
		IfNoneMatch:               aws.String("*"),
		ChecksumAlgorithm:         types.ChecksumAlgorithmSha256,
		ChecksumSHA256:            aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ObjectLockMode:            types.ObjectLockModeCompliance,
		ObjectLockRetainUntilDate: aws.Time(a.retainUntil()),
	}
	for attempt := 0; ; attempt++ {
		in.Body = bytes.NewReader(data)
		_, err := a.client.PutObject(ctx, in)
		switch code := errorCode(err); {
		case err == nil:
			return nil
		case code == "PreconditionFailed" || HTTPStatus(err) == http.StatusPreconditionFailed:
			return fmt.Errorf("s3://%s/%s: %w", a.bucket, key, audit.ErrExists)
		case code == "ConditionalRequestConflict" && attempt < conflictRetries:
			// Another write of the key is in flight; S3 says to retry, and
			// the retry then meets the object it wrote, or writes ours.
			if err := sleep(ctx, time.Duration(50<<attempt)*time.Millisecond); err != nil {
				return fmt.Errorf("s3store: put s3://%s/%s: %w", a.bucket, key, err)
			}
		default:
			return fmt.Errorf("s3store: put s3://%s/%s: %w", a.bucket, key, err)
		}
	}
}

// retainUntil is now plus the retention, rounded up to the second (S3
// keeps retain-until dates to the second).
func (a *Archive) retainUntil() time.Time {
	return a.now().Add(a.retention).Add(time.Second - 1).UTC().Truncate(time.Second)
}

func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(key, ".json"):
		return "application/json"
	}
	return "application/octet-stream"
}

// Open implements audit.ArchiveStore.
func (a *Archive) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	out, err := a.read.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("s3://%s/%s: %w", a.bucket, key, audit.ErrNotArchived)
		}
		return nil, fmt.Errorf("s3store: get s3://%s/%s: %w", a.bucket, key, err)
	}
	limit := a.MaxObjectBytes
	if limit <= 0 {
		limit = DefaultMaxObjectBytes
	}
	tooLarge := fmt.Errorf("s3store: s3://%s/%s is larger than the limit of %d bytes", a.bucket, key, limit)
	if out.ContentLength != nil && *out.ContentLength > limit {
		out.Body.Close()
		return nil, fmt.Errorf("s3store: s3://%s/%s is %d bytes; the limit is %d", a.bucket, key, *out.ContentLength, limit)
	}
	return &limitedBody{body: out.Body, left: limit, tooLarge: tooLarge}, nil
}

// limitedBody reads a body up to a limit and fails, rather than stopping
// short, past it.
type limitedBody struct {
	body     io.ReadCloser
	left     int64
	tooLarge error
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.body.Read(p)
	if int64(n) > l.left {
		n, l.left = int(l.left), 0
		return n, l.tooLarge
	}
	l.left -= int64(n)
	return n, err
}

func (l *limitedBody) Close() error { return l.body.Close() }

// List implements audit.ArchiveStore: the keys under prefix, page by page,
// sorted.
func (a *Archive) List(ctx context.Context, prefix string) ([]string, error) {
	if !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("prefix %q: %w: it must end in /", prefix, audit.ErrBadKey)
	}
	if err := checkKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return nil, err
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(a.bucket), Prefix: aws.String(prefix)}
	if a.pageSize > 0 {
		in.MaxKeys = aws.Int32(a.pageSize)
	}
	var keys []string
	pages := s3.NewListObjectsV2Paginator(a.read, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3store: list s3://%s/%s: %w", a.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			if o.Key == nil || !strings.HasPrefix(*o.Key, prefix) {
				return nil, fmt.Errorf("s3store: list s3://%s/%s: the answer holds a key outside the prefix", a.bucket, prefix)
			}
			keys = append(keys, *o.Key)
		}
		if len(keys) > MaxListKeys {
			return nil, fmt.Errorf("s3store: list s3://%s/%s: more than %d keys", a.bucket, prefix, MaxListKeys)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// checkKey takes the keys audit.DirStore takes: a relative slash-separated
// path of plain names, none empty, "." or "..", or starting with a dot —
// and, as S3 keys, valid UTF-8 without control characters.
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyBytes || strings.HasPrefix(key, "/") {
		return fmt.Errorf("%q: %w: not a relative path of at most %d bytes", key, audit.ErrBadKey, maxKeyBytes)
	}
	if !utf8.ValidString(key) || strings.ContainsFunc(key, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' }) {
		return fmt.Errorf("%q: %w: holds a control character or backslash", key, audit.ErrBadKey)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, ".") {
			return fmt.Errorf("%q: %w: not a plain path", key, audit.ErrBadKey)
		}
	}
	return nil
}

// errorCode is the S3 error code of err, "" if it has none.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus is the HTTP status of the answer that made err, 0 if none.
// HTTPStatus is the HTTP status of an S3 error answer, 0 if err is not one.
func HTTPStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
