package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/audit/archivetest"
	"github.com/wardenhq/warden/shared/s3store/s3test"
)

// TestArchiveConformance runs the checks every archive store passes
// against the S3 store on versitygw, an Object Lock bucket each, with
// pages of 3 keys so that List walks several pages.
func TestArchiveConformance(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	archivetest.Run(t, func(t *testing.T) audit.ArchiveStore {
		a, err := NewArchive(srv.Client(), srv.Bucket(t, true), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		a.pageSize = 3
		return a
	})
}

// TestArchiveObjectsAreLocked checks what S3 keeps of a created object —
// COMPLIANCE retention until the write plus the retention, the SHA-256 —
// and that the locked version can be neither deleted nor have its
// retention shortened or weakened, by the root account itself.
func TestArchiveObjectsAreLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := s3test.Start(t)
	client := srv.Client()
	bucket := srv.Bucket(t, true)
	a, err := NewArchive(client, bucket, 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	written := time.Now().UTC().Truncate(time.Second).Add(time.Second / 2)
	a.now = func() time.Time { return written }
	const key = "records/2026/11/26/00000000000000000001-00000000000000000100.jsonl.gz"
	data := []byte("the batch's bytes\n")
	if err := a.Create(ctx, key, data); err != nil {
		t.Fatal(err)
	}

	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	wantUntil := written.Add(90*24*time.Hour + time.Second/2) // rounded up to the second
	switch {
	case head.ObjectLockMode != types.ObjectLockModeCompliance:
		t.Errorf("lock mode %q, want COMPLIANCE", head.ObjectLockMode)
	case head.ObjectLockRetainUntilDate == nil || !head.ObjectLockRetainUntilDate.Equal(wantUntil):
		t.Errorf("retain until %v, want %v", head.ObjectLockRetainUntilDate, wantUntil)
	case aws.ToString(head.ChecksumSHA256) != base64.StdEncoding.EncodeToString(sum[:]):
		t.Errorf("stored SHA-256 %q, want %q", aws.ToString(head.ChecksumSHA256), base64.StdEncoding.EncodeToString(sum[:]))
	case aws.ToString(head.ContentType) != "application/gzip":
		t.Errorf("content type %q", aws.ToString(head.ContentType))
	case aws.ToString(head.VersionId) == "":
		t.Fatal("no version ID: the bucket is not versioned")
	}
	version := head.VersionId

	wantDenied := func(what string, err error) {
		t.Helper()
		if code := errorCode(err); code != "AccessDenied" {
			t.Errorf("%s: %v (code %q), want AccessDenied", what, err, code)
		}
	}
	_, err = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: version})
	wantDenied("DeleteObject of the locked version", err)
	_, err = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: version, BypassGovernanceRetention: aws.Bool(true)})
	wantDenied("DeleteObject of the locked version, bypassing governance retention", err)
	for _, r := range []types.ObjectLockRetention{
		{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(written.Add(time.Hour))},
		{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(wantUntil)},
	} {
		_, err = client.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: version,
			Retention: &r, BypassGovernanceRetention: aws.Bool(true)})
		wantDenied("PutObjectRetention "+string(r.Mode)+" until "+r.RetainUntilDate.Format(time.RFC3339), err)
	}
	ret, err := client.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: version})
	if err != nil {
		t.Fatal(err)
	}
	if ret.Retention.Mode != types.ObjectLockRetentionModeCompliance || !ret.Retention.RetainUntilDate.Equal(wantUntil) {
		t.Errorf("retention after the attempts: %s until %v, want COMPLIANCE until %v", ret.Retention.Mode, ret.Retention.RetainUntilDate, wantUntil)
	}
	if got := archivetest.Read(t, a, key); !bytes.Equal(got, data) {
		t.Errorf("the object reads %q after the attempts", got)
	}
	if err := a.Create(ctx, key, []byte("other")); !errors.Is(err, audit.ErrExists) {
		t.Errorf("Create over the locked object: %v, want ErrExists", err)
	}

	// The control: the same client deletes a version that is not locked.
	plain := srv.Bucket(t, false)
	put, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(plain), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.VersionId) == "" {
		t.Fatal("no version ID in the plain versioned bucket")
	}
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(plain), Key: aws.String(key), VersionId: put.VersionId}); err != nil {
		t.Errorf("DeleteObject of a version without a lock: %v", err)
	}

	versions, err := client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(versions.Versions) != 1 || len(versions.DeleteMarkers) != 0 {
		t.Errorf("the key has %d versions and %d delete markers, want the one version", len(versions.Versions), len(versions.DeleteMarkers))
	}
}

// TestArchiveChecksumIsVerified changes the bytes on the way out, after
// Create computed their SHA-256 (as a faulty network or proxy would): S3
// refuses them and nothing is stored.
func TestArchiveChecksumIsVerified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, true)
	corrupt := func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("corrupt", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if put, ok := in.Parameters.(*s3.PutObjectInput); ok {
					put.Body = strings.NewReader("the batch'S bytes\n")
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
		})
	}
	a, err := NewArchive(s3.NewFromConfig(srv.Config(), srv.Options, corrupt), bucket, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const key = "records/x.jsonl.gz"
	err = a.Create(ctx, key, []byte("the batch's bytes\n"))
	if err == nil || errors.Is(err, audit.ErrExists) || !strings.Contains(err.Error(), "put s3://"+bucket+"/"+key) {
		t.Fatalf("Create with bytes that do not match their checksum: %v", err)
	}
	t.Logf("the refusal: %v", err)
	clean, _ := NewArchive(srv.Client(), bucket, time.Hour)
	if _, err := clean.Open(ctx, key); !errors.Is(err, audit.ErrNotArchived) {
		t.Fatalf("Open after the refused write: %v, want ErrNotArchived", err)
	}
}

// TestArchiveOpenChecksBytes damages an object where S3 keeps it: the
// bytes read no longer match the SHA-256 stored with them, and the read
// fails.
func TestArchiveOpenChecksBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, true)
	a, err := NewArchive(srv.Client(), bucket, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const key = "records/2026/11/26/x.jsonl.gz"
	if err := a.Create(ctx, key, []byte("the batch's bytes\n")); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(srv.Root, bucket, filepath.FromSlash(key))
	if err := os.WriteFile(name, []byte("the batch'S bytes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := a.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("read of a damaged object: %q, %v; want a checksum mismatch", got, err)
	}
}

func TestArchiveOpenLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := s3test.Start(t)
	a, err := NewArchive(srv.Client(), srv.Bucket(t, true), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Create(ctx, "records/a", bytes.Repeat([]byte("x"), 1001)); err != nil {
		t.Fatal(err)
	}
	a.MaxObjectBytes = 1000
	if _, err := a.Open(ctx, "records/a"); err == nil || !strings.Contains(err.Error(), "records/a is 1001 bytes; the limit is 1000") {
		t.Fatalf("Open of an object over the limit: %v", err)
	}
	a.MaxObjectBytes = 1001
	if got := archivetest.Read(t, a, "records/a"); len(got) != 1001 {
		t.Fatalf("Open of an object at the limit read %d bytes", len(got))
	}
}

// TestLimitedBody covers a body whose size S3 did not announce.
func TestLimitedBody(t *testing.T) {
	t.Parallel()
	tooLarge := errors.New("too large")
	for _, tt := range []struct {
		size, limit int
		wantErr     error
	}{
		{0, 10, nil}, {10, 10, nil}, {11, 10, tooLarge}, {100_000, 10, tooLarge}, {100_000, 100_000, nil}, {1, 0, tooLarge},
	} {
		body := &limitedBody{body: io.NopCloser(io.MultiReader(bytes.NewReader(make([]byte, tt.size/2)), bytes.NewReader(make([]byte, tt.size-tt.size/2)))),
			left: int64(tt.limit), tooLarge: tooLarge}
		got, err := io.ReadAll(body)
		if !errors.Is(err, tt.wantErr) || (err == nil && len(got) != tt.size) || len(got) > tt.limit {
			t.Errorf("%d bytes, limit %d: read %d bytes, %v; want %v", tt.size, tt.limit, len(got), err, tt.wantErr)
		}
	}
}

func TestArchiveCheckAndBucketRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := s3test.Start(t)
	client := srv.Client()
	locked, plain := srv.Bucket(t, true), srv.Bucket(t, false)

	a, _ := NewArchive(client, plain, time.Hour)
	if err := a.Check(ctx); err == nil || !strings.Contains(err.Error(), "bucket "+plain+" does not have Object Lock enabled") {
		t.Errorf("Check of a bucket without Object Lock: %v", err)
	}
	if err := a.Create(ctx, "records/a", []byte("x")); err == nil {
		t.Error("Create with retention in a bucket without Object Lock succeeded")
	}
	a, _ = NewArchive(client, locked, time.Hour)
	if err := a.Check(ctx); err != nil {
		t.Errorf("Check of an Object Lock bucket: %v", err)
	}
	if _, err := BucketRetention(ctx, client, locked); err == nil || !strings.Contains(err.Error(), "no default retention") {
		t.Errorf("BucketRetention without a default: %v", err)
	}
	setDefault := func(r types.DefaultRetention) {
		t.Helper()
		_, err := client.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: aws.String(locked),
			ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled,
				Rule: &types.ObjectLockRule{DefaultRetention: &r}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	setDefault(types.DefaultRetention{Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(30)})
	if _, err := BucketRetention(ctx, client, locked); err == nil || !strings.Contains(err.Error(), `default retention mode is "GOVERNANCE", not COMPLIANCE`) {
		t.Errorf("BucketRetention of a GOVERNANCE default: %v", err)
	}
	setDefault(types.DefaultRetention{Mode: types.ObjectLockRetentionModeCompliance, Days: aws.Int32(30)})
	if d, err := BucketRetention(ctx, client, locked); err != nil || d < 30*24*time.Hour-time.Hour || d > 30*24*time.Hour+time.Hour {
		t.Errorf("BucketRetention of 30 days: %v, %v", d, err)
	}
	if _, err := BucketRetention(ctx, client, plain); err == nil {
		t.Error("BucketRetention of a bucket without Object Lock succeeded")
	}
}

func TestNewArchive(t *testing.T) {
	t.Parallel()
	c := s3.New(s3.Options{Region: "us-east-1"})
	for _, tt := range []struct {
		name      string
		client    ArchiveAPI
		bucket    string
		retention time.Duration
		want      string
	}{
		{"no client", nil, "b", time.Hour, "s3store: archive: no S3 client"},
		{"no bucket", c, "", time.Hour, "s3store: archive: no bucket name"},
		{"no retention", c, "b", 0, "s3store: archive s3://b: retention 0s: it must be more than 0"},
		{"negative retention", c, "b", -time.Hour, "s3store: archive s3://b: retention -1h0m0s: it must be more than 0"},
		{"retention over 100 years", c, "b", MaxRetention + time.Hour, "s3store: archive s3://b: retention 876001h0m0s is more than S3's limit of 100 years"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewArchive(tt.client, tt.bucket, tt.retention); err == nil || err.Error() != tt.want {
				t.Fatalf("NewArchive: %v, want %q", err, tt.want)
			}
		})
	}
	if a, err := NewArchive(c, "b", MaxRetention); err != nil || a.MaxObjectBytes != DefaultMaxObjectBytes {
		t.Fatalf("NewArchive with the longest retention: %v", err)
	}
}

// conflicting answers the first conflicts PutObjects with S3's 409
// ConditionalRequestConflict, and passes the rest to the real client.
type conflicting struct {
	*s3.Client
	conflicts int
	puts      int
}

func (c *conflicting) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	c.puts++
	if c.puts <= c.conflicts {
		io.Copy(io.Discard, in.Body)
		return nil, &smithy.GenericAPIError{Code: "ConditionalRequestConflict", Message: "A conflicting operation occurred."}
	}
	return c.Client.PutObject(ctx, in, opts...)
}

func TestArchiveRetriesConflicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, true)
	for _, tt := range []struct {
		conflicts, puts int
		exists          bool
		want            string
	}{
		{2, 3, false, ""},
		{conflictRetries, conflictRetries + 1, false, ""},
		{conflictRetries + 1, conflictRetries + 1, false, "api error ConditionalRequestConflict: A conflicting operation occurred."},
		{1, 2, true, "records/k: archive object exists and is immutable"},
	} {
		key := fmt.Sprintf("records/%d-%v", tt.conflicts, tt.exists)
		if tt.exists {
			key = "records/k"
			if err := createFirst(ctx, srv, bucket, key); err != nil {
				t.Fatal(err)
			}
		}
		c := &conflicting{Client: srv.Client(), conflicts: tt.conflicts}
		a, _ := NewArchive(c, bucket, time.Hour)
		err := a.Create(ctx, key, []byte(key))
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.HasSuffix(err.Error(), tt.want)) || c.puts != tt.puts {
			t.Errorf("%d conflicts: Create = %v after %d puts; want %q after %d", tt.conflicts, err, c.puts, tt.want, tt.puts)
		}
		if tt.exists != errors.Is(err, audit.ErrExists) {
			t.Errorf("%d conflicts: errors.Is(%v, ErrExists) = %v", tt.conflicts, err, !tt.exists)
		}
		if err == nil {
			if got := archivetest.Read(t, a, key); string(got) != key {
				t.Errorf("%s holds %q", key, got)
			}
		}
	}
}

func createFirst(ctx context.Context, srv *s3test.Server, bucket, key string) error {
	a, err := NewArchive(srv.Client(), bucket, time.Hour)
	if err != nil {
		return err
	}
	return a.Create(ctx, key, []byte("first"))
}

// TestArchiveReaderOverGetter: the archive read through Getter's signed
// GETs (the api function has no S3 client) lists, page by page, and opens
// what the archiver wrote, as the S3 client does; it writes nothing.
func TestArchiveReaderOverGetter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, true)
	w, err := NewArchive(srv.Client(), bucket, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 7 {
		key := fmt.Sprintf("records/%020d-%020d.jsonl.gz", i*10+1, i*10+10)
		want[key] = strings.Repeat(fmt.Sprint(i), 100+i)
		if err := w.Create(ctx, key, []byte(want[key])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Create(ctx, "keys/k1.json", []byte(`{"k":1}`)); err != nil {
		t.Fatal(err)
	}
	r, err := NewArchiveReader(&Getter{Region: s3test.Region, Credentials: srv.Config().Credentials, Endpoint: srv.URL}, bucket)
	if err != nil {
		t.Fatal(err)
	}
	r.pageSize = 3
	keys, err := r.List(ctx, "records/")
	if err != nil || len(keys) != 7 || !slices.IsSorted(keys) {
		t.Fatalf("List = %q, %v; want the 7 record batches", keys, err)
	}
	for _, k := range keys {
		body, err := r.Open(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(body)
		body.Close()
		if err != nil || string(data) != want[k] {
			t.Errorf("Open(%s) = %d bytes, %v", k, len(data), err)
		}
	}
	if keys, err := r.List(ctx, "keys/"); err != nil || !slices.Equal(keys, []string{"keys/k1.json"}) {
		t.Errorf("List(keys/) = %q, %v", keys, err)
	}
	if _, err := r.Open(ctx, "records/none.jsonl.gz"); !errors.Is(err, audit.ErrNotArchived) {
		t.Errorf("Open of a missing key: %v, want ErrNotArchived", err)
	}
	if err := r.Create(ctx, "records/x", []byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Create on a reader: %v, want ErrReadOnly", err)
	}
}

func TestParseListAnswer(t *testing.T) {
	t.Parallel()
	out, err := ParseListAnswer([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>records/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>records/a&amp;b</Key><Size>3</Size></Contents><Contents><Key>records/c</Key></Contents><NextContinuationToken>tok==</NextContinuationToken></ListBucketResult>`))
	if err != nil || len(out.Contents) != 2 || *out.Contents[0].Key != "records/a&b" || !*out.IsTruncated || *out.NextContinuationToken != "tok==" {
		t.Fatalf("ParseListAnswer = %+v, %v", out, err)
	}
	for _, bad := range []string{`<Error><Code>AccessDenied</Code></Error>`, `<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>`, `not xml`} {
		if _, err := ParseListAnswer([]byte(bad)); err == nil {
			t.Errorf("ParseListAnswer(%q) accepted", bad)
		}
	}
}
