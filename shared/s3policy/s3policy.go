// Package s3policy keeps the policy of a versioned S3 bucket in force
// through policyload: the fetcher the api and llm functions give it.
package s3policy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/s3store"
)

// ObjectFetcher fetches one object of a bucket — the policy, in a
// versioned bucket — for policyload: a policyload.Fetcher. After the
// first fetch it asks S3 for the object only if its ETag is no longer the
// one it read last (GET with If-None-Match), so an unchanged object costs
// a 304 Not Modified without a body. Each Revision carries the object's
// version ID, which the loaded or refused policy's audit record names.
//
// The ETag of an object changes with its content. A new upload of the
// same bytes keeps its ETag (and is not fetched again): the policy in
// force is then the same, though its version ID is the older one's.
type ObjectFetcher struct {
	client      s3store.GetObjectAPI
	bucket, key string

	mu   sync.Mutex
	etag string // of the last object read; "" before the first
}

var _ policyload.Fetcher = (*ObjectFetcher)(nil)

// NewObjectFetcher returns a fetcher of s3://bucket/key: for the policy,
// NewObjectFetcher(client, cfg.PolicyBucket, awsconfig.PolicyKey), passed
// to policyload.New. It needs s3:GetObject, s3:GetObjectVersion (for the
// version ID) and s3:ListBucket on the bucket (without it a missing object
// reads as 403, not 404).
func NewObjectFetcher(client s3store.GetObjectAPI, bucket, key string) *ObjectFetcher {
	return &ObjectFetcher{client: client, bucket: bucket, key: key}
}

// Name implements policyload.Fetcher: s3://bucket/key.
func (f *ObjectFetcher) Name() string { return "s3://" + f.bucket + "/" + f.key }

// Fetch implements policyload.Fetcher. An object that does not exist
// fails with an error that wraps ErrNoObject.
func (f *ObjectFetcher) Fetch(ctx context.Context, limit int64) (policyload.Revision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(f.key)}
	if f.etag != "" {
		in.IfNoneMatch = aws.String(f.etag)
	}
	out, err := f.client.GetObject(ctx, in)
	if err != nil {
		if s3store.HTTPStatus(err) == http.StatusNotModified {
			return policyload.Revision{}, policyload.ErrUnchanged
		}
		return policyload.Revision{}, s3store.GetError(f.bucket, f.key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return policyload.Revision{}, fmt.Errorf("s3store: read s3://%s/%s: %w", f.bucket, f.key, err)
	}
	f.etag = aws.ToString(out.ETag)
	return policyload.Revision{Data: data, Name: f.Name(), VersionID: aws.ToString(out.VersionId)}, nil
}
