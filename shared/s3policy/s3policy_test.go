package s3policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/s3store"
	"github.com/wardenhq/warden/shared/s3store/s3test"
)

// exchange is one request the recorder saw, with what came of it.
type exchange struct {
	method, path, ifNoneMatch string
	status                    int
	bodyRead                  *int64 // bytes of the answer's body the client read
}

// recorder is an http.RoundTripper that records the exchanges.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	x := exchange{method: req.Method, path: req.URL.Path, ifNoneMatch: req.Header.Get("If-None-Match"), status: resp.StatusCode, bodyRead: new(int64)}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: x.bodyRead, mu: &r.mu}
	r.mu.Lock()
	r.exchanges = append(r.exchanges, x)
	r.mu.Unlock()
	return resp, nil
}

// take returns the exchanges since the last take.
func (r *recorder) take() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	x := r.exchanges
	r.exchanges = nil
	return x
}

type countingBody struct {
	io.ReadCloser
	n  *int64
	mu *sync.Mutex
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.mu.Lock()
	*c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

// TestPolicyFromS3 keeps the policy of a versioned bucket in force through
// policyload, as a Lambda does: a new valid version is swapped in with its
// version ID audited, an invalid or oversized one is refused and audited
// and the last good one stays, and an unchanged policy costs a 304
// without a body.
func TestPolicyFromS3(t *testing.T) {
	t.Parallel()
	for name, reader := range readers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testPolicyFromS3(t, reader)
		})
	}
}

// readers make the two s3store.GetObjectAPIs over the emulator, with the
// recorder's transport: the S3 client, and the Getter the functions use.
var readers = map[string]func(*s3test.Server, http.RoundTripper) s3store.GetObjectAPI{
	"s3 client": func(srv *s3test.Server, rt http.RoundTripper) s3store.GetObjectAPI {
		cfg := srv.Config()
		cfg.HTTPClient = &http.Client{Transport: rt}
		return s3.NewFromConfig(cfg, srv.Options)
	},
	"getter": func(srv *s3test.Server, rt http.RoundTripper) s3store.GetObjectAPI {
		return &s3store.Getter{Region: s3test.Region, Credentials: srv.Config().Credentials, Endpoint: srv.URL, HTTP: &http.Client{Transport: rt}}
	},
}

func testPolicyFromS3(t *testing.T, reader func(*s3test.Server, http.RoundTripper) s3store.GetObjectAPI) {
	ctx := context.Background()
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, false)
	rec := &recorder{}
	client := reader(srv, rec)
	upload := func(body []byte) string {
		t.Helper()
		out, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(awsconfig.PolicyKey), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.VersionId) == "" {
			t.Fatal("the policy bucket gave no version ID")
		}
		return aws.ToString(out.VersionId)
	}
	name := "s3://" + bucket + "/" + awsconfig.PolicyKey
	var records []string
	sink := &audit.MemorySink{}
	wantRecords := func(more ...string) {
		t.Helper()
		records = append(records, more...)
		var got []string
		for _, r := range sink.Records() {
			got = append(got, fmt.Sprintf("%s %s %s", r.Code, r.Resource, r.Reason))
		}
		if strings.Join(got, "\n") != strings.Join(records, "\n") {
			t.Fatalf("audit records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(records, "\n"))
		}
	}
	// wantGet checks that the last refresh made one GET of the policy,
	// conditional on ifNoneMatch, answered with status, and that the
	// client read at most maxBody bytes of its body.
	wantGet := func(ifNoneMatch string, status int, maxBody int64) {
		t.Helper()
		x := rec.take()
		if len(x) != 1 || x[0].method != http.MethodGet || x[0].path != "/"+bucket+"/"+awsconfig.PolicyKey {
			t.Fatalf("requests %+v, want one GET of the policy", x)
		}
		if x[0].ifNoneMatch != ifNoneMatch || x[0].status != status || *x[0].bodyRead > maxBody {
			t.Fatalf("GET with If-None-Match %q, answered %d, %d bytes of body read; want %q, %d, at most %d",
				x[0].ifNoneMatch, x[0].status, *x[0].bodyRead, ifNoneMatch, status, maxBody)
		}
	}
	etag := func() string {
		t.Helper()
		head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(awsconfig.PolicyKey)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(head.ETag)
	}

	v1 := "version: 1\nrules:\n  - {id: one, effect: allow, action: git:push}\n"
	id1 := upload([]byte(v1))
	var logs strings.Builder
	src, err := policyload.New(ctx, NewObjectFetcher(client, bucket, awsconfig.PolicyKey), sink, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	wantGet("", http.StatusOK, int64(len(v1)))
	wantRecords("policy.loaded " + name + "?versionId=" + id1 + " 1 rules")
	if src.Name() != name || src.Current().RuleCount() != 1 {
		t.Fatalf("source %s with %d rules", src.Name(), src.Current().RuleCount())
	}
	first := src.Current()

	if err := src.Refresh(ctx); err != nil || src.Current() != first {
		t.Fatalf("Refresh of an unchanged policy: %v", err)
	}
	wantGet(etag(), http.StatusNotModified, 0)

	v2 := v1 + "  - {id: two, effect: deny, action: git:fetch}\n"
	id2 := upload([]byte(v2))
	if err := src.Refresh(ctx); err != nil || src.Current().RuleCount() != 2 {
		t.Fatalf("Refresh to v2: %v, %d rules", err, src.Current().RuleCount())
	}
	wantGet(etagOf(t, v1, srv, bucket, id1), http.StatusOK, int64(len(v2)))
	wantRecords("policy.loaded " + name + "?versionId=" + id2 + " 2 rules")
	if !strings.Contains(logs.String(), "version_id="+id2) {
		t.Fatalf("the log does not name version %s:\n%s", id2, logs.String())
	}
	second := src.Current()

	id3 := upload([]byte("version: 1\nrulez: []\n"))
	if err := src.Refresh(ctx); err == nil || !strings.Contains(err.Error(), name+`:2:1: unknown field "rulez"`) {
		t.Fatalf("Refresh to an invalid v3: %v", err)
	}
	if src.Current() != second {
		t.Fatal("the invalid v3 replaced v2")
	}
	rec.take()
	wantRecords(fmt.Sprintf("policy.rejected %s?versionId=%s %s:2:1: unknown field \"rulez\" (did you mean \"rules\"?) [unknown-field]\n"+
		"\thint: allowed here: version, projects, rules, budgets, rate_limits, watchdog, approvers, notifications, aws", name, id3, name))

	// The refused version is not fetched, nor audited, again.
	if err := src.Refresh(ctx); err != nil || src.Current() != second {
		t.Fatalf("Refresh after the refusal: %v", err)
	}
	wantGet(etag(), http.StatusNotModified, 0)
	wantRecords()

	// An object over the policy's size limit is refused without being
	// downloaded whole.
	big := append([]byte(v2), bytes.Repeat([]byte("# padding\n"), (policy.MaxFileBytes+2<<20)/10)...)
	id4 := upload(big)
	if err := src.Refresh(ctx); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("the limit is %d", policy.MaxFileBytes)) {
		t.Fatalf("Refresh to an oversized v4: %v", err)
	}
	if src.Current() != second {
		t.Fatal("the oversized v4 replaced v2")
	}
	x := rec.take()
	if len(x) != 1 || *x[0].bodyRead > policy.MaxFileBytes+1<<20 {
		t.Fatalf("fetching the oversized policy: %d requests, %d of its %d bytes read", len(x), *x[0].bodyRead, len(big))
	}
	if recs := sink.Records(); recs[len(recs)-1].Code != audit.PolicyRejected || recs[len(recs)-1].Resource != name+"?versionId="+id4 {
		t.Fatalf("the oversized version's record: %+v", recs[len(recs)-1])
	}

	// A policy deleted (a delete marker on top) keeps the last good one.
	if _, err := srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(awsconfig.PolicyKey)}); err != nil {
		t.Fatal(err)
	}
	if err := src.Refresh(ctx); !errors.Is(err, s3store.ErrNoObject) || src.Current() != second {
		t.Fatalf("Refresh of a deleted policy: %v", err)
	}
}

// etagOf is the ETag of one version of the policy.
func etagOf(t *testing.T, want string, srv *s3test.Server, bucket, versionID string) string {
	t.Helper()
	out, err := srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(awsconfig.PolicyKey), VersionId: aws.String(versionID)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if got, _ := io.ReadAll(out.Body); string(got) != want {
		t.Fatalf("version %s holds %q", versionID, got)
	}
	return aws.ToString(out.ETag)
}
