package awssts_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/wardenhq/warden/shared/awsquery"
	"github.com/wardenhq/warden/shared/awsquery/awstest"
	"github.com/wardenhq/warden/shared/awssts"
)

const (
	brokerKey    = "AKIABROKERTEST000000"
	brokerSecret = "broker-test-secret"
	region       = "eu-central-1"
)

// sessionPolicy is a policy as Warden compiles it.
const sessionPolicy = `{"Version":"2012-10-17","Statement":[` +
	`{"Effect":"Deny","Action":["s3:DeleteObject"],"Resource":["arn:aws:s3:::data-lake/*"]},` +
	`{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::data-lake","arn:aws:s3:::data-lake/raw/*"]}]}`

// input is what the broker asks for: every parameter set, tags with
// characters that need encoding.
func input(roleARN string) awssts.AssumeRoleInput {
	return awssts.AssumeRoleInput{
		RoleARN:         roleARN,
		SessionName:     "warden-0123456789abcdef01234567",
		Policy:          sessionPolicy,
		DurationSeconds: 1800,
		SourceIdentity:  "0123456789abcdef01234567",
		Tags: []awssts.Tag{{Key: "warden:project", Value: "data pipeline"}, {Key: "warden:agent", Value: "claude-data"},
			{Key: "team", Value: "data+ml@example.com"}},
		TransitiveTagKeys: []string{"warden:project", "warden:agent"},
	}
}

// sdkInput is input for the SDK's client.
func sdkInput(in awssts.AssumeRoleInput) *sts.AssumeRoleInput {
	out := &sts.AssumeRoleInput{RoleArn: aws.String(in.RoleARN), RoleSessionName: aws.String(in.SessionName),
		TransitiveTagKeys: in.TransitiveTagKeys}
	if in.Policy != "" {
		out.Policy = aws.String(in.Policy)
	}
	if in.DurationSeconds != 0 {
		out.DurationSeconds = aws.Int32(in.DurationSeconds)
	}
	if in.SourceIdentity != "" {
		out.SourceIdentity = aws.String(in.SourceIdentity)
	}
	for _, t := range in.Tags {
		out.Tags = append(out.Tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	return out
}

func sdkClient(srv *awstest.Server, key, secret, token string) *sts.Client {
	return sts.New(sts.Options{Region: region, Credentials: credentials.NewStaticCredentialsProvider(key, secret, token),
		BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1})
}

func ourClient(srv *awstest.Server, key, secret string) *awssts.Client {
	return &awssts.Client{Region: region, Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""), Endpoint: srv.URL}
}

// TestSameRequestsAsTheSDK: the SDK's client and ours, given the same
// input, send the same form, and both get credentials that work.
func TestSameRequestsAsTheSDK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := awstest.New(t, brokerKey, brokerSecret, region)
	roleARN := srv.CreateRole("agent-runtime", 12*time.Hour)
	in := input(roleARN)

	out, err := sdkClient(srv, brokerKey, brokerSecret, "").AssumeRole(ctx, sdkInput(in))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := ourClient(srv, brokerKey, brokerSecret).AssumeRole(ctx, in)
	if err != nil {
		t.Fatal(err)
	}

	calls := srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	if !reflect.DeepEqual(calls[0].Params, calls[1].Params) {
		t.Errorf("parameters:\nSDK  %v\nours %v", calls[0].Params, calls[1].Params)
	}
	if calls[0].Body != calls[1].Body {
		t.Errorf("body:\nSDK  %s\nours %s", calls[0].Body, calls[1].Body)
	}
	for _, p := range []string{"RoleArn", "RoleSessionName", "Policy", "DurationSeconds", "SourceIdentity",
		"Tags.member.3.Key", "Tags.member.3.Value", "TransitiveTagKeys.member.2"} {
		if calls[1].Params.Get(p) == "" {
			t.Errorf("parameter %s not sent: %v", p, calls[1].Params)
		}
	}

	sdk := awssts.Credentials{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken: aws.ToString(out.Credentials.SessionToken), Expiration: aws.ToTime(out.Credentials.Expiration),
		PackedPolicySize: int(aws.ToInt32(out.PackedPolicySize)), AssumedRoleARN: aws.ToString(out.AssumedRoleUser.Arn)}
	wantARN := "arn:aws:sts::123456789012:assumed-role/agent-runtime/" + in.SessionName
	for name, c := range map[string]awssts.Credentials{"SDK": sdk, "ours": ours} {
		if len(c.AccessKeyID) != 20 || !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.SecretAccessKey == "" || c.SessionToken == "" {
			t.Errorf("%s: credentials %+v", name, c)
		}
		if d := time.Until(c.Expiration); d < 29*time.Minute || d > 31*time.Minute {
			t.Errorf("%s: expiration %s, want in 30 minutes", name, c.Expiration)
		}
		if c.AssumedRoleARN != wantARN || c.PackedPolicySize != sdk.PackedPolicySize || c.PackedPolicySize == 0 {
			t.Errorf("%s: ARN %s, packed size %d%%; want %s and the SDK's %d%%", name, c.AssumedRoleARN, c.PackedPolicySize, wantARN, sdk.PackedPolicySize)
		}
		who, err := sdkClient(srv, c.AccessKeyID, c.SecretAccessKey, c.SessionToken).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Errorf("%s: the credentials do not work: %v", name, err)
		} else if aws.ToString(who.Arn) != wantARN {
			t.Errorf("%s: the credentials are %s's, want %s", name, aws.ToString(who.Arn), wantARN)
		}
		sess, ok := srv.Session(c.AccessKeyID)
		want := awstest.Session{AccessKeyID: c.AccessKeyID, RoleARN: roleARN, SessionName: in.SessionName, SourceIdentity: in.SourceIdentity,
			Tags:              map[string]string{"warden:project": "data pipeline", "warden:agent": "claude-data", "team": "data+ml@example.com"},
			TransitiveTagKeys: in.TransitiveTagKeys, Policy: in.Policy, Issued: sess.Issued, Expiration: c.Expiration}
		if !ok || !reflect.DeepEqual(sess, want) {
			t.Errorf("%s: the stand-in's session\n%+v\nwant\n%+v", name, sess, want)
		}
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(format, ours); strings.Contains(s, ours.SecretAccessKey) || strings.Contains(s, ours.SessionToken) {
			t.Errorf("%s of the credentials, %q, shows the secret", format, s)
		}
	}
}

// TestErrorsAgreeWithTheSDK: for each refusal, the SDK's client and ours
// read the same code; ours has its sentinel where there is one.
func TestErrorsAgreeWithTheSDK(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup returns the input and the credentials to sign with.
		setup    func(srv *awstest.Server) (in awssts.AssumeRoleInput, key, secret string)
		code     string
		sentinel error
		sdkType  any
	}{
		{"packed policy too large", func(srv *awstest.Server) (awssts.AssumeRoleInput, string, string) {
			srv.SetPackedLimit(len(sessionPolicy))
			return input(srv.CreateRole("agent-runtime", 12*time.Hour)), brokerKey, brokerSecret
		}, "PackedPolicyTooLarge", awssts.ErrPackedPolicyTooLarge, new(*types.PackedPolicyTooLargeException)},
		{"access denied", func(srv *awstest.Server) (awssts.AssumeRoleInput, string, string) {
			return input(awstest.RoleARN("not-a-role")), brokerKey, brokerSecret
		}, "AccessDenied", awssts.ErrAccessDenied, nil},
		{"bad signature", func(srv *awstest.Server) (awssts.AssumeRoleInput, string, string) {
			return input(srv.CreateRole("agent-runtime", 12*time.Hour)), brokerKey, "not-the-secret"
		}, "SignatureDoesNotMatch", nil, nil},
		{"unknown key", func(srv *awstest.Server) (awssts.AssumeRoleInput, string, string) {
			return input(srv.CreateRole("agent-runtime", 12*time.Hour)), "AKIANOTAKEY000000000", brokerSecret
		}, "InvalidClientTokenId", nil, nil},
		{"longer than the role allows", func(srv *awstest.Server) (awssts.AssumeRoleInput, string, string) {
			return input(srv.CreateRole("agent-runtime", 0)), brokerKey, brokerSecret
		}, "ValidationError", nil, nil},
		{"malformed policy", func(srv *awstest.Server) (awssts.AssumeRoleInput, string, string) {
			in := input(srv.CreateRole("agent-runtime", 12*time.Hour))
			in.Policy = `{"Statement": {"Effect": "Allow"}}`
			return in, brokerKey, brokerSecret
		}, "MalformedPolicyDocument", nil, new(*types.MalformedPolicyDocumentException)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv := awstest.New(t, brokerKey, brokerSecret, region)
			in, key, secret := tt.setup(srv)
			in.DurationSeconds = 7200

			_, sdkErr := sdkClient(srv, key, secret, "").AssumeRole(ctx, sdkInput(in))
			var apiErr smithy.APIError
			if !errors.As(sdkErr, &apiErr) || apiErr.ErrorCode() != tt.code {
				t.Errorf("SDK: %v, want code %s", sdkErr, tt.code)
			}
			if tt.sdkType != nil && !errors.As(sdkErr, tt.sdkType) {
				t.Errorf("SDK: %T, want %T", sdkErr, tt.sdkType)
			}

			_, err := ourClient(srv, key, secret).AssumeRole(ctx, in)
			var e *awsquery.Error
			if !errors.As(err, &e) || e.Code != tt.code || e.Action != "AssumeRole" || e.Service != "sts" {
				t.Fatalf("ours: %v, want code %s", err, tt.code)
			}
			// The stand-in's SignatureDoesNotMatch says what it signed.
			if apiErr != nil && e.Message != apiErr.ErrorMessage() && tt.code != "SignatureDoesNotMatch" {
				t.Errorf("message:\nSDK  %q\nours %q", apiErr.ErrorMessage(), e.Message)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("ours: %v is not %v", err, tt.sentinel)
			}
			for _, s := range []error{awssts.ErrAccessDenied, awssts.ErrPackedPolicyTooLarge, awssts.ErrRegionDisabled, awssts.ErrInvalidInput} {
				if s != tt.sentinel && errors.Is(err, s) {
					t.Errorf("ours: %v is %v", err, s)
				}
			}
			if want := "assume " + in.RoleARN + " as " + in.SessionName + ": sts AssumeRole: " + tt.code + " ("; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("ours: %q, want it to start %q", err, want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("ours: %q names the secret", err)
			}
			if calls := srv.Calls(); len(calls) != 2 || !reflect.DeepEqual(calls[0].Params, calls[1].Params) {
				t.Errorf("calls %+v, want two alike", calls)
			}
		})
	}
}

func TestRegionDisabled(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>RegionDisabledException</Code>` +
			`<Message>STS is not activated in this region for account:123456789012.</Message></Error><RequestId>r</RequestId></ErrorResponse>`))
	}))
	defer srv.Close()
	c := &awssts.Client{Region: "ap-east-1", Credentials: credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, ""), Endpoint: srv.URL}
	_, err := c.AssumeRole(context.Background(), input(awstest.RoleARN("agent-runtime")))
	var e *awsquery.Error
	if !errors.Is(err, awssts.ErrRegionDisabled) || !errors.As(err, &e) || e.Code != "RegionDisabledException" {
		t.Errorf("error %v", err)
	}
}

func TestNoAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := (&awssts.Client{Region: region, Credentials: credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, ""), Endpoint: srv.URL}).
		AssumeRole(context.Background(), input(awstest.RoleARN("agent-runtime")))
	var e *awsquery.Error
	if err == nil || errors.As(err, &e) || !strings.Contains(err.Error(), "sts AssumeRole: Post ") {
		t.Errorf("error %v, want the request's", err)
	}
}

func TestIncompleteAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA</AccessKeyId></Credentials></AssumeRoleResult></AssumeRoleResponse>`))
	}))
	defer srv.Close()
	in := input(awstest.RoleARN("agent-runtime"))
	_, err := (&awssts.Client{Region: region, Credentials: credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, ""), Endpoint: srv.URL}).
		AssumeRole(context.Background(), in)
	if want := "assume " + in.RoleARN + " as " + in.SessionName + ": the answer has incomplete credentials"; err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
}

// TestValidate: input that breaks STS's rules is refused, and not sent.
func TestValidate(t *testing.T) {
	t.Parallel()
	tags := func(n int) []awssts.Tag {
		out := make([]awssts.Tag, n)
		for i := range out {
			out[i] = awssts.Tag{Key: "k" + strings.Repeat("x", i), Value: "v"}
		}
		return out
	}
	tests := []struct {
		name   string
		change func(in *awssts.AssumeRoleInput)
		want   string
	}{
		{"no role", func(in *awssts.AssumeRoleInput) { in.RoleARN = "" }, `sts: invalid input: role ARN "": want an ARN of 20 to 2048 characters`},
		{"role not an ARN", func(in *awssts.AssumeRoleInput) { in.RoleARN = "role/agent-runtime-of-warden" },
			`sts: invalid input: role ARN "role/agent-runtime-of-warden": want an ARN of 20 to 2048 characters`},
		{"short session name", func(in *awssts.AssumeRoleInput) { in.SessionName = "w" },
			`sts: invalid input: session name "w": want 2 to 64 letters, digits or _+=,.@-`},
		{"long session name", func(in *awssts.AssumeRoleInput) { in.SessionName = strings.Repeat("w", 65) },
			`sts: invalid input: session name "` + strings.Repeat("w", 65) + `": want 2 to 64 letters, digits or _+=,.@-`},
		{"session name with a space", func(in *awssts.AssumeRoleInput) { in.SessionName = "warden session" },
			`sts: invalid input: session name "warden session": want 2 to 64 letters, digits or _+=,.@-`},
		{"source identity with a slash", func(in *awssts.AssumeRoleInput) { in.SourceIdentity = "ses/1" },
			`sts: invalid input: source identity "ses/1": want 2 to 64 letters, digits or _+=,.@-`},
		{"short source identity", func(in *awssts.AssumeRoleInput) { in.SourceIdentity = "s" },
			`sts: invalid input: source identity "s": want 2 to 64 letters, digits or _+=,.@-`},
		{"source identity aws:", func(in *awssts.AssumeRoleInput) { in.SourceIdentity = "AWS:warden" },
			`sts: invalid input: source identity "AWS:warden": must not start with "aws:"`},
		{"short duration", func(in *awssts.AssumeRoleInput) { in.DurationSeconds = 899 }, "sts: invalid input: duration 899 s: want 900 to 43200"},
		{"long duration", func(in *awssts.AssumeRoleInput) { in.DurationSeconds = 43201 }, "sts: invalid input: duration 43201 s: want 900 to 43200"},
		{"long policy", func(in *awssts.AssumeRoleInput) { in.Policy = strings.Repeat(" ", 2049) },
			"sts: invalid input: session policy: 2049 characters, over STS's 2048"},
		{"policy outside Latin-1", func(in *awssts.AssumeRoleInput) { in.Policy = `{"Sid": "€"}` },
			`sts: invalid input: session policy: character '€' at byte 9: STS takes tab, newline, carriage return and U+0020 to U+00FF`},
		{"51 tags", func(in *awssts.AssumeRoleInput) { in.Tags = tags(51) }, "sts: invalid input: 51 session tags, over STS's 50"},
		{"empty tag key", func(in *awssts.AssumeRoleInput) { in.Tags = []awssts.Tag{{Value: "v"}} },
			`sts: invalid input: session tag key "": want 1 to 128 letters, digits, spaces or _.:/=+-@`},
		{"long tag key", func(in *awssts.AssumeRoleInput) { in.Tags = []awssts.Tag{{Key: strings.Repeat("k", 129)}} },
			`sts: invalid input: session tag key "` + strings.Repeat("k", 129) + `": want 1 to 128 letters, digits, spaces or _.:/=+-@`},
		{"tag key aws:", func(in *awssts.AssumeRoleInput) { in.Tags = []awssts.Tag{{Key: "aws:project", Value: "v"}} },
			`sts: invalid input: session tag key "aws:project": must not start with "aws:"`},
		{"long tag value", func(in *awssts.AssumeRoleInput) { in.Tags = []awssts.Tag{{Key: "k", Value: strings.Repeat("v", 257)}} },
			`sts: invalid input: session tag "k": value "` + strings.Repeat("v", 257) + `": want up to 256 letters, digits, spaces or _.:/=+-@`},
		{"tag value with a comma", func(in *awssts.AssumeRoleInput) { in.Tags = []awssts.Tag{{Key: "k", Value: "a,b"}} },
			`sts: invalid input: session tag "k": value "a,b": want up to 256 letters, digits, spaces or _.:/=+-@`},
		{"tag keys differing in case", func(in *awssts.AssumeRoleInput) {
			in.Tags = []awssts.Tag{{Key: "Team", Value: "a"}, {Key: "team", Value: "b"}}
		},
			`sts: invalid input: session tag "team": given twice (tag keys are case-insensitive)`},
		{"bad transitive key", func(in *awssts.AssumeRoleInput) { in.TransitiveTagKeys = []string{"a,b"} },
			`sts: invalid input: transitive tag key "a,b": want 1 to 128 letters, digits, spaces or _.:/=+-@`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := awstest.New(t, brokerKey, brokerSecret, region)
			in := input(srv.CreateRole("agent-runtime", 12*time.Hour))
			tt.change(&in)
			_, err := ourClient(srv, brokerKey, brokerSecret).AssumeRole(context.Background(), in)
			if err == nil || err.Error() != tt.want || !errors.Is(err, awssts.ErrInvalidInput) {
				t.Errorf("error %v\nwant  %s", err, tt.want)
			}
			if calls := srv.Calls(); len(calls) != 0 {
				t.Errorf("sent %+v", calls)
			}
		})
	}
}

// TestValidateTakesLimits: the limits themselves pass, and STS takes
// them.
func TestValidateTakesLimits(t *testing.T) {
	t.Parallel()
	srv := awstest.New(t, brokerKey, brokerSecret, region)
	srv.SetPackedLimit(1 << 20)
	in := awssts.AssumeRoleInput{RoleARN: srv.CreateRole("agent-runtime", 12*time.Hour), SessionName: strings.Repeat("s", 64),
		SourceIdentity: "s@", DurationSeconds: 43200, Policy: sessionPolicy + strings.Repeat(" ", 2048-len(sessionPolicy))}
	for i := range 50 {
		in.Tags = append(in.Tags, awssts.Tag{Key: strings.Repeat("k", 126) + string(rune('A'+i%26)) + string(rune('a'+i/26)), Value: strings.Repeat("v", 256)})
	}
	in.Tags[0].Key = "é " + strings.Repeat("k", 127) // letters and spaces of any script count once
	if err := in.Validate(); err == nil {
		t.Fatal("a 129-character tag key passed")
	}
	in.Tags[0].Key = "é " + strings.Repeat("k", 126)
	c, err := ourClient(srv, brokerKey, brokerSecret).AssumeRole(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(c.Expiration); d < 12*time.Hour-time.Minute {
		t.Errorf("expiration in %s, want 12 h", d)
	}
}
