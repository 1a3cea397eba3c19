package s3store

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
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

// Getter is a GetObjectAPI that makes S3's GetObject (and ListObjectsV2)
// as one signed HTTP GET, without the S3 client: the api and llm functions only read the
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
	var h http.Header
	if etag := aws.ToString(in.IfNoneMatch); etag != "" {
		h = http.Header{"If-None-Match": {etag}}
	}
	resp, err := g.get(ctx, bucket, escapeKey(key), nil, h)
	if err != nil {
		return nil, fmt.Errorf("s3store: GetObject s3://%s/%s: %w", bucket, key, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, answerError(resp)
	}
	out := &s3.GetObjectOutput{Body: resp.Body, ETag: header(resp, "ETag"), VersionId: header(resp, "X-Amz-Version-Id")}
	if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil {
		out.ContentLength = aws.Int64(n)
	}
	return out, nil
}

// maxListBody bounds a ListObjectsV2 answer: a page of 1,000 keys of
// S3's longest (1,024 bytes) with their metadata is under 1.5 MB.
const maxListBody = 4 << 20

// ListObjectsV2 lists the keys of in's Bucket under its Prefix, a page
// from its ContinuationToken (at most MaxKeys keys, if set), as one signed
// GET; the answer carries the keys and the next page's token, not the
// objects' other metadata. The options are not used.
func (g *Getter) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	bucket := aws.ToString(in.Bucket)
	if bucket == "" {
		return nil, fmt.Errorf("s3store: ListObjectsV2 needs a bucket")
	}
	q := url.Values{"list-type": {"2"}}
	if p := aws.ToString(in.Prefix); p != "" {
		q.Set("prefix", p)
	}
	if t := aws.ToString(in.ContinuationToken); t != "" {
		q.Set("continuation-token", t)
	}
	if in.MaxKeys != nil {
		q.Set("max-keys", strconv.Itoa(int(*in.MaxKeys)))
	}
	resp, err := g.get(ctx, bucket, "", q, nil)
	if err != nil {
		return nil, fmt.Errorf("s3store: ListObjectsV2 s3://%s/%s: %w", bucket, aws.ToString(in.Prefix), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, answerError(resp)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListBody+1))
	if err != nil {
		return nil, fmt.Errorf("s3store: ListObjectsV2 s3://%s: %w", bucket, err)
	}
	out, err := ParseListAnswer(body)
	if err != nil {
		return nil, fmt.Errorf("s3store: ListObjectsV2 s3://%s: %w", bucket, err)
	}
	return out, nil
}

// ParseListAnswer reads a ListObjectsV2 answer (ListBucketResult): its
// keys, whether it is truncated and the next page's token.
func ParseListAnswer(body []byte) (*s3.ListObjectsV2Output, error) {
	if len(body) > maxListBody {
		return nil, fmt.Errorf("the answer is more than %d bytes", maxListBody)
	}
	var res struct {
		XMLName               xml.Name `xml:"ListBucketResult"`
		IsTruncated           bool
		NextContinuationToken string
		Contents              []struct{ Key string }
	}
	if err := xml.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("the answer is not a ListBucketResult: %w", err)
	}
	if res.IsTruncated && res.NextContinuationToken == "" {
		return nil, errors.New("the answer is truncated but names no next page")
	}
	out := &s3.ListObjectsV2Output{IsTruncated: aws.Bool(res.IsTruncated), KeyCount: aws.Int32(int32(len(res.Contents)))}
	if res.NextContinuationToken != "" {
		out.NextContinuationToken = aws.String(res.NextContinuationToken)
	}
	for _, c := range res.Contents {
		out.Contents = append(out.Contents, types.Object{Key: aws.String(c.Key)})
	}
	return out, nil
}

// get makes a signed GET of path (escaped) in bucket, with query q and
// headers h: virtual-hosted on AWS, path-style against Endpoint.
func (g *Getter) get(ctx context.Context, bucket, path string, q url.Values, h http.Header) (*http.Response, error) {
	u := "https://" + bucket + ".s3." + g.Region + ".amazonaws.com/" + path
	if g.Endpoint != "" {
		u = strings.TrimRight(g.Endpoint, "/") + "/" + url.PathEscape(bucket) + "/" + path
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	maps.Copy(req.Header, h)
	req.Header.Set("X-Amz-Content-Sha256", emptyPayload)
	creds, err := g.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptyPayload, "s3", g.Region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	client := g.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	return client.Do(req)
}

// answerError is the error of an answer other than 200, as the S3 client
// gives it: NoSuchKey for a missing key, else an error that callers read
// the status of (304 Not Modified, 403...). It closes the body.
func answerError(resp *http.Response) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	code := ""
	if m := errorCodeRE.FindSubmatch(body); m != nil {
		code = string(m[1])
	}
	if resp.StatusCode == http.StatusNotFound && code == "NoSuchKey" {
		return &types.NoSuchKey{Message: aws.String("The specified key does not exist.")}
	}
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
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
