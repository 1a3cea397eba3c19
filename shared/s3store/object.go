package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// GetObjectAPI is the part of the S3 API that reads objects; *s3.Client
// has it.
type GetObjectAPI interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ GetObjectAPI = (*s3.Client)(nil)

// ErrNoObject is returned (wrapped) when the object read does not exist.
var ErrNoObject = errors.New("no such object")

// ReadObject reads s3://bucket/key whole, if it is at most limit bytes: for
// the optional objects of the policy bucket (awsconfig.LLMConfigKey and
// PricesKey), which a function reads at start. An object that does not
// exist fails with an error that wraps ErrNoObject — the caller then uses
// its defaults; any other failure, a larger object included, is an error
// to stop on.
func ReadObject(ctx context.Context, client GetObjectAPI, bucket, key string, limit int64) ([]byte, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, GetError(bucket, key, err)
	}
	defer out.Body.Close()
	if n := aws.ToInt64(out.ContentLength); n > limit {
		return nil, fmt.Errorf("s3store: s3://%s/%s is %d bytes; the limit is %d", bucket, key, n, limit)
	}
	data, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("s3store: read s3://%s/%s: %w", bucket, key, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("s3store: s3://%s/%s is larger than the limit of %d bytes", bucket, key, limit)
	}
	return data, nil
}

// GetError is the error of a failed GetObject: one that wraps ErrNoObject
// when the object does not exist.
func GetError(bucket, key string, err error) error {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return fmt.Errorf("s3store: s3://%s/%s: %w", bucket, key, ErrNoObject)
	}
	return fmt.Errorf("s3store: get s3://%s/%s: %w", bucket, key, err)
}
