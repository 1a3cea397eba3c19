package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/s3store/s3test"
)

// readers make the two GetObjectAPIs over the emulator, with the
// recorder's transport: the S3 client, and the Getter the functions use.
var readers = map[string]func(*s3test.Server, http.RoundTripper) GetObjectAPI{
	"s3 client": func(srv *s3test.Server, rt http.RoundTripper) GetObjectAPI {
		cfg := srv.Config()
		cfg.HTTPClient = &http.Client{Transport: rt}
		return s3.NewFromConfig(cfg, srv.Options)
	},
	"getter": func(srv *s3test.Server, rt http.RoundTripper) GetObjectAPI {
		return &Getter{Region: s3test.Region, Credentials: srv.Config().Credentials, Endpoint: srv.URL, HTTP: &http.Client{Transport: rt}}
	},
}

// TestReadObject reads the optional objects of the policy bucket: absent
// (the function uses its defaults), present, and too large.
func TestReadObject(t *testing.T) {
	t.Parallel()
	for name, reader := range readers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testReadObject(t, reader)
		})
	}
}

func testReadObject(t *testing.T, reader func(*s3test.Server, http.RoundTripper) GetObjectAPI) {
	ctx := context.Background()
	srv := s3test.Start(t)
	client := reader(srv, http.DefaultTransport)
	bucket := srv.Bucket(t, false)
	if _, err := ReadObject(ctx, client, bucket, awsconfig.LLMConfigKey, 1<<20); !errors.Is(err, ErrNoObject) ||
		err.Error() != "s3store: s3://"+bucket+"/llm.yaml: no such object" {
		t.Fatalf("ReadObject of an absent object: %v", err)
	}
	prices := []byte("anthropic:\n  claude-x: {input: 1, output: 2}\n")
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(awsconfig.PricesKey), Body: bytes.NewReader(prices)}); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadObject(ctx, client, bucket, awsconfig.PricesKey, int64(len(prices))); err != nil || !bytes.Equal(got, prices) {
		t.Fatalf("ReadObject: %q, %v", got, err)
	}
	want := fmt.Sprintf("s3store: s3://%s/prices.yaml is %d bytes; the limit is %d", bucket, len(prices), len(prices)-1)
	if _, err := ReadObject(ctx, client, bucket, awsconfig.PricesKey, int64(len(prices)-1)); err == nil || err.Error() != want {
		t.Fatalf("ReadObject over the limit: %v, want %q", err, want)
	}
	if _, err := ReadObject(ctx, client, "no-such-bucket", awsconfig.PricesKey, 1<<20); err == nil || errors.Is(err, ErrNoObject) {
		t.Fatalf("ReadObject from a missing bucket: %v, want an error other than ErrNoObject", err)
	}
}

// TestGetterSignature: S3 (the emulator checks SigV4) refuses the
// Getter's request signed with another secret, and the error is not
// taken for a missing object.
func TestGetterSignature(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, false)
	wrong := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		creds, err := srv.Config().Credentials.Retrieve(context.Background())
		creds.SecretAccessKey += "x"
		return creds, err
	})
	g := &Getter{Region: s3test.Region, Credentials: wrong, Endpoint: srv.URL}
	_, err := ReadObject(context.Background(), g, bucket, awsconfig.PolicyKey, 1<<20)
	if err == nil || errors.Is(err, ErrNoObject) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a request with a wrong signature: %v", err)
	}
}
