package awstest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/wardenhq/warden/shared/awsiam"
	"github.com/wardenhq/warden/shared/awsquery/awstest"
	"github.com/wardenhq/warden/shared/awssts"
)

const (
	brokerKey    = "AKIABROKERTEST000000"
	brokerSecret = "broker-test-secret"
	region       = "eu-central-1"
	role         = "agent-runtime"
)

// runtimePolicy is the runtime role's own: the most any session may do.
const runtimePolicy = `{"Version": "2012-10-17", "Statement": {"Sid": "Runtime", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "arn:aws:s3:::data-lake/*"}}`

// sessionPolicy lets a session read the raw objects only.
const sessionPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::data-lake/raw/*"]}]}`

// world is a stand-in with the runtime role, its policy, objects, and the
// broker's clients.
type world struct {
	srv *awstest.Server
	sts *awssts.Client
	iam *awsiam.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := awstest.New(t, brokerKey, brokerSecret, region)
	srv.CreateRole(role, 12*time.Hour)
	creds := credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, "")
	w := &world{srv: srv, sts: &awssts.Client{Region: region, Credentials: creds, Endpoint: srv.URL}, iam: &awsiam.Client{Credentials: creds, Endpoint: srv.URL}}
	if err := w.iam.PutRolePolicy(context.Background(), role, "runtime", runtimePolicy); err != nil {
		t.Fatal(err)
	}
	srv.PutObject("data-lake", "raw/2026/a.csv", []byte("id,value\n1,42\n"))
	srv.PutObject("data-lake", "curated/b.csv", []byte("id\n"))
	srv.PutObject("other-bucket", "raw/c.csv", []byte("id\n"))
	return w
}

// assume issues a session's credentials as the broker does.
func (w *world) assume(t *testing.T, sessionID, policy string, tags ...awssts.Tag) awssts.Credentials {
	t.Helper()
	c, err := w.sts.AssumeRole(context.Background(), awssts.AssumeRoleInput{RoleARN: awstest.RoleARN(role), SessionName: "warden-" + sessionID,
		Policy: policy, DurationSeconds: 900, SourceIdentity: sessionID, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// s3Client is the SDK's S3 client with c, path-style, at the stand-in.
func s3Client(srv *awstest.Server, key, secret, token string) *s3.Client {
	return s3.New(s3.Options{Region: region, Credentials: credentials.NewStaticCredentialsProvider(key, secret, token),
		BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, RetryMaxAttempts: 1, DisableLogOutputChecksumValidationSkipped: true})
}

// get reads bucket/key with c through the SDK: the body, or the error's
// code.
func get(t *testing.T, srv *awstest.Server, c awssts.Credentials, bucket, key string) string {
	t.Helper()
	return getWith(t, s3Client(srv, c.AccessKeyID, c.SecretAccessKey, c.SessionToken), bucket, key)
}

func getWith(t *testing.T, client *s3.Client, bucket, key string) string {
	t.Helper()
	out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var e smithy.APIError
		if !errors.As(err, &e) {
			t.Fatalf("GetObject %s/%s: %v", bucket, key, err)
		}
		return e.ErrorCode()
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestGetObjectFollowsThePolicies: a session reads what both its session
// policy and the role's policies allow, and nothing else.
func TestGetObjectFollowsThePolicies(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.assume(t, "0123456789abcdef01234567", sessionPolicy)
	noPolicy := w.assume(t, "89abcdef0123456789abcdef", "")
	for _, tt := range []struct {
		name        string
		c           awssts.Credentials
		bucket, key string
		want        string
	}{
		{"allowed by both", c, "data-lake", "raw/2026/a.csv", "id,value\n1,42\n"},
		{"not by the session policy", c, "data-lake", "curated/b.csv", "AccessDenied"},
		{"not by the role's", c, "other-bucket", "raw/c.csv", "AccessDenied"},
		{"allowed, but missing", c, "data-lake", "raw/missing.csv", "NoSuchKey"},
		{"without a session policy, the role's decide", noPolicy, "data-lake", "curated/b.csv", "id\n"},
		{"without a session policy, not by the role's", noPolicy, "other-bucket", "raw/c.csv", "AccessDenied"},
	} {
		if got := get(t, w.srv, tt.c, tt.bucket, tt.key); got != tt.want {
			t.Errorf("%s: GetObject %s/%s = %q, want %q", tt.name, tt.bucket, tt.key, got, tt.want)
		}
	}
}

// TestRevokeBySourceIdentity: a Deny on the role for one session's source
// identity refuses that session, not the others, and lifting it lets the
// session in again.
func TestRevokeBySourceIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	killed := w.assume(t, "0123456789abcdef01234567", sessionPolicy)
	live := w.assume(t, "89abcdef0123456789abcdef", sessionPolicy)
	const obj = "raw/2026/a.csv"
	if get(t, w.srv, killed, "data-lake", obj) != "id,value\n1,42\n" {
		t.Fatal("the session cannot read before it is killed")
	}
	deny := `{"Version": "2012-10-17", "Statement": [{"Sid": "S0123456789abcdef01234567", "Effect": "Deny", "Action": "*", "Resource": "*",
	  "Condition": {"StringEquals": {"aws:SourceIdentity": "0123456789abcdef01234567"}}}]}`
	if err := w.iam.PutRolePolicy(ctx, role, "warden-revocations", deny); err != nil {
		t.Fatal(err)
	}
	if got := get(t, w.srv, killed, "data-lake", obj); got != "AccessDenied" {
		t.Errorf("the killed session: %q, want AccessDenied", got)
	}
	if got := get(t, w.srv, live, "data-lake", obj); got != "id,value\n1,42\n" {
		t.Errorf("another session: %q", got)
	}
	// The killed session's credentials still authenticate: only its
	// permissions are gone.
	who, err := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(w.srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(killed.AccessKeyID, killed.SecretAccessKey, killed.SessionToken)}).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(who.Arn) != killed.AssumedRoleARN {
		t.Errorf("GetCallerIdentity of the killed session: %v, %v", who, err)
	}
	if err := w.iam.DeleteRolePolicy(ctx, role, "warden-revocations"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, w.srv, killed, "data-lake", obj); got != "id,value\n1,42\n" {
		t.Errorf("after the Deny is lifted: %q", got)
	}
}

// TestRevokeByTagAndIssueTime: a Deny on session tags and on the token's
// issue time, as the broker puts for a stopped agent: the credentials
// issued before the stop are refused, those issued after are not.
func TestRevokeByTagAndIssueTime(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tags := []awssts.Tag{{Key: "warden:project", Value: "data-pipeline"}, {Key: "warden:agent", Value: "claude-data"}}
	before := w.assume(t, "0123456789abcdef01234567", sessionPolicy, tags...)
	otherAgent := w.assume(t, "fedcba9876543210fedcba98", sessionPolicy, awssts.Tag{Key: "warden:project", Value: "data-pipeline"}, awssts.Tag{Key: "warden:agent", Value: "codex"})
	w.srv.Advance(2 * time.Second)
	stop := w.srv.Now()
	deny := fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {
	  "StringEquals": {"aws:PrincipalTag/warden:project": "data-pipeline", "aws:PrincipalTag/warden:agent": "claude-data"},
	  "DateLessThan": {"aws:TokenIssueTime": %q}}}]}`, stop.Format(time.RFC3339))
	if err := w.iam.PutRolePolicy(context.Background(), role, "warden-revocations", deny); err != nil {
		t.Fatal(err)
	}
	after := w.assume(t, "89abcdef0123456789abcdef", sessionPolicy, tags...)
	for name, tt := range map[string]struct {
		c    awssts.Credentials
		want string
	}{
		"issued before the stop":  {before, "AccessDenied"},
		"issued after the stop":   {after, "id,value\n1,42\n"},
		"another agent's, before": {otherAgent, "id,value\n1,42\n"},
	} {
		if got := get(t, w.srv, tt.c, "data-lake", "raw/2026/a.csv"); got != tt.want {
			t.Errorf("%s: %q, want %q", name, got, tt.want)
		}
	}
}

// TestCredentialsAreChecked: S3 refuses credentials it did not issue,
// signatures by another secret, another token, expired credentials, and
// the broker's own.
func TestCredentialsAreChecked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.assume(t, "0123456789abcdef01234567", sessionPolicy)
	const obj = "raw/2026/a.csv"
	for name, tt := range map[string]struct {
		key, secret, token, want string
	}{
		"unknown key":            {"ASIAAAAAAAAAAAAAAAAA", c.SecretAccessKey, c.SessionToken, "InvalidAccessKeyId"},
		"another secret":         {c.AccessKeyID, "not-the-secret", c.SessionToken, "SignatureDoesNotMatch"},
		"another token":          {c.AccessKeyID, c.SecretAccessKey, "not-the-token", "InvalidToken"},
		"no token":               {c.AccessKeyID, c.SecretAccessKey, "", "InvalidToken"},
		"the broker's own":       {brokerKey, brokerSecret, "", "AccessDenied"},
		"the issued credentials": {c.AccessKeyID, c.SecretAccessKey, c.SessionToken, "id,value\n1,42\n"},
	} {
		if got := getWith(t, s3Client(w.srv, tt.key, tt.secret, tt.token), "data-lake", obj); got != tt.want {
			t.Errorf("%s: %q, want %q", name, got, tt.want)
		}
	}
	w.srv.Advance(899 * time.Second)
	if got := get(t, w.srv, c, "data-lake", obj); got != "id,value\n1,42\n" {
		t.Errorf("a second before expiry: %q", got)
	}
	w.srv.Advance(time.Second)
	if got := get(t, w.srv, c, "data-lake", obj); got != "ExpiredToken" {
		t.Errorf("expired: %q, want ExpiredToken", got)
	}
	_, err := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(w.srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)}).
		GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	var e smithy.APIError
	if !errors.As(err, &e) || e.ErrorCode() != "ExpiredToken" {
		t.Errorf("GetCallerIdentity when expired: %v", err)
	}
}

// TestIssuedCredentialsCannotAssume: a session's credentials may not call
// the broker's actions.
func TestIssuedCredentialsCannotAssume(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.assume(t, "0123456789abcdef01234567", sessionPolicy)
	creds := credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	_, err := (&awssts.Client{Region: region, Credentials: creds, Endpoint: w.srv.URL}).AssumeRole(context.Background(),
		awssts.AssumeRoleInput{RoleARN: awstest.RoleARN(role), SessionName: "escalate"})
	if !errors.Is(err, awssts.ErrAccessDenied) {
		t.Errorf("AssumeRole: %v", err)
	}
	err = (&awsiam.Client{Credentials: creds, Endpoint: w.srv.URL}).DeleteRolePolicy(context.Background(), role, "runtime")
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("DeleteRolePolicy: %v", err)
	}
}

// TestSignedForAnotherRegion: a request signed for another region or
// service does not pass.
func TestSignedForAnotherRegion(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	creds := credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, "")
	_, err := (&awssts.Client{Region: "us-west-2", Credentials: creds, Endpoint: w.srv.URL}).AssumeRole(context.Background(),
		awssts.AssumeRoleInput{RoleARN: awstest.RoleARN(role), SessionName: "warden-x"})
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("STS signed for us-west-2: %v", err)
	}
	_, err = sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(w.srv.URL), RetryMaxAttempts: 1, Credentials: creds}).
		AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(awstest.RoleARN(role)), RoleSessionName: aws.String("warden-x")})
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("the SDK's STS signed for us-east-1: %v", err)
	}
}

// TestPackedSize: PackedPolicySize is the policy and tags' share of the
// limit, and over 100% is refused.
func TestPackedSize(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.srv.SetPackedLimit(2 * len(sessionPolicy))
	c := w.assume(t, "0123456789abcdef01234567", sessionPolicy, awssts.Tag{Key: "k", Value: "v"})
	if c.PackedPolicySize != 51 {
		t.Errorf("PackedPolicySize %d%%, want 51%% (%d of %d characters, rounded up)", c.PackedPolicySize, len(sessionPolicy)+2, 2*len(sessionPolicy))
	}
	_, err := w.sts.AssumeRole(context.Background(), awssts.AssumeRoleInput{RoleARN: awstest.RoleARN(role), SessionName: "warden-x",
		Policy: sessionPolicy, Tags: []awssts.Tag{{Key: "k", Value: strings.Repeat("v", len(sessionPolicy))}}})
	if !errors.Is(err, awssts.ErrPackedPolicyTooLarge) || !strings.HasSuffix(err.Error(), "Packed policy consumes 101% of allotted space, please use smaller policy.") {
		t.Errorf("error %v", err)
	}
}

// TestNotModelled: what the stand-in does not model fails the test that
// sends it, rather than pass unchecked.
func TestNotModelled(t *testing.T) {
	t.Parallel()
	fake := &recorder{TB: t}
	srv := awstest.New(fake, brokerKey, brokerSecret, region)
	srv.CreateRole(role, 0)
	creds := credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, "")
	_, err := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1, Credentials: creds}).
		AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(awstest.RoleARN(role)), RoleSessionName: aws.String("warden-x"),
			PolicyArns: []types.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")}}})
	if err == nil || len(fake.errors) != 1 || !strings.Contains(fake.errors[0], `parameter "PolicyArns.member.1.arn"`) {
		t.Errorf("managed session policies: %v; reported %q", err, fake.errors)
	}
	resp, err := http.Get(srv.URL + "/data-lake/a%20b.csv")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || len(fake.errors) != 2 || !strings.Contains(fake.errors[1], "unreserved characters") {
		t.Errorf("a key with a space: %d; reported %q", resp.StatusCode, fake.errors)
	}
}

// recorder keeps what the stand-in reports instead of failing the test.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestAssumeRoleRefusals: the stand-in refuses, as STS does, what the
// SDK's client sends without checking.
func TestAssumeRoleRefusals(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	client := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(w.srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, "")})
	many := make([]types.Tag, 51)
	for i := range many {
		many[i] = types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")}
	}
	for _, tt := range []struct {
		name   string
		change func(in *sts.AssumeRoleInput)
		code   string
	}{
		{"duration under 900 s", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(899) }, "ValidationError"},
		{"duration over 12 h", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43201) }, "ValidationError"},
		{"source identity with a slash", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("ses/1") }, "ValidationError"},
		{"source identity aws:", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("aws:x") }, "ValidationError"},
		{"short session name", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("w") }, "ValidationError"},
		{"51 tags", func(in *sts.AssumeRoleInput) { in.Tags = many }, "ValidationError"},
		{"tag keys differing in case", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("Team"), Value: aws.String("a")}, {Key: aws.String("team"), Value: aws.String("b")}}
		}, "InvalidParameterValue"},
		{"policy over 2048 characters", func(in *sts.AssumeRoleInput) { in.Policy = aws.String(sessionPolicy + strings.Repeat(" ", 2048)) }, "ValidationError"},
		{"malformed policy", func(in *sts.AssumeRoleInput) { in.Policy = aws.String(`{"Statement": []`) }, "MalformedPolicyDocument"},
		{"unknown role", func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String(awstest.RoleARN("other")) }, "AccessDenied"},
		{"another account's role", func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::210987654321:role/" + role) }, "AccessDenied"},
	} {
		in := &sts.AssumeRoleInput{RoleArn: aws.String(awstest.RoleARN(role)), RoleSessionName: aws.String("warden-x"), Policy: aws.String(sessionPolicy)}
		tt.change(in)
		_, err := client.AssumeRole(context.Background(), in)
		var e smithy.APIError
		if !errors.As(err, &e) || e.ErrorCode() != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}
}
