package s3store

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Getter is a GetObjectAPI that makes S3's GetObject as one signed HTTP
// GET, without the S3 client: the api and llm functions only read the
// policy bucket's few objects, and the client with its serializers is
// about 4.7 MB of each binary (the aim is 20 MB). It speaks the documented
// REST call: virtual-hosted addressing on AWS, path-style against an
// endpoint given, SigV4 with the empty payload's hash, If-None-Match, and
// the answers GetObject's callers look at (200 with ETag and version ID,
// 304, 404 NoSuchKey, other errors with S3's code).
type Getter struct {
	Region      string
	Credentials aws.CredentialsProvider
	// Endpoint, if set, is used path-style (a test's S3 emulator, an
	// AWS_ENDPOINT_URL_S3); else https://BUCKET.s3.REGION.amazonaws.com.
	Endpoint string
	HTTP     *http.Client
}

var _ GetObjectAPI = (*Getter)(nil)

// emptyPayload is the SHA-256 of an empty body, in hex.
const emptyPayload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 8 << 10

var errorCodeRE = regexp.MustCompile(`<Code>([A-Za-z0-9.]{1,64})</Code>`)

// GetObject implements GetObjectAPI for in's Bucket, Key and IfNoneMatch;
// the options are not used.
func (g *Getter) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	bucket, key := aws.ToString(in.Bucket), aws.ToString(in.Key)
	if bucket == "" || key == "" {
		return nil, fmt.Errorf("s3store: GetObject needs a bucket and a key")
	}
	u := "https://" + bucket + ".s3." + g.Region + ".amazonaws.com/" + escapeKey(key)
	if g.Endpoint != "" {
		u = strings.TrimRight(g.Endpoint, "/") + "/" + url.PathEscape(bucket) + "/" + escapeKey(key)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("s3store: GetObject s3://%s/%s: %w", bucket, key, err)
	}
	if etag := aws.ToString(in.IfNoneMatch); etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	req.Header.Set("X-Amz-Content-Sha256", emptyPayload)
	creds, err := g.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3store: credentials: %w", err)
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptyPayload, "s3", g.Region, time.Now()); err != nil {
		return nil, fmt.Errorf("s3store: sign GetObject: %w", err)
	}
	client := g.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("s3store: GetObject s3://%s/%s: %w", bucket, key, err)
	}
	if resp.StatusCode == http.StatusOK {
		out := &s3.GetObjectOutput{Body: resp.Body, ETag: header(resp, "ETag"), VersionId: header(resp, "X-Amz-Version-Id")}
		if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil {
			out.ContentLength = aws.Int64(n)
		}
		return out, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	code := ""
	if m := errorCodeRE.FindSubmatch(body); m != nil {
		code = string(m[1])
	}
	if resp.StatusCode == http.StatusNotFound && code == "NoSuchKey" {
		return nil, &types.NoSuchKey{Message: aws.String("The specified key does not exist.")}
	}
	// The error the S3 client returns for an answer it has no type for:
	// callers read its status (304 Not Modified, 403...).
	return nil, &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: resp},
		Err:      fmt.Errorf("S3 answered %d %s", resp.StatusCode, code),
	}}
}

func header(resp *http.Response, name string) *string {
	if v := resp.Header.Get(name); v != "" {
		return aws.String(v)
	}
	return nil
}

// escapeKey escapes each segment of an object key, keeping its slashes.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
