package awsiam_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/wardenhq/warden/shared/awsiam"
	"github.com/wardenhq/warden/shared/awsquery"
	"github.com/wardenhq/warden/shared/awsquery/awstest"
)

const (
	brokerKey    = "AKIABROKERTEST000000"
	brokerSecret = "broker-test-secret"
	role         = "agent-runtime"
	policyName   = "warden-revocations"
)

// revocation is the kind of document the broker puts on the runtime
// role: characters that IAM's URL-encoding must carry (space, +, %, &,
// non-ASCII in a condition value).
const revocation = `{"Version": "2012-10-17", "Statement": [{"Sid": "S0123T1795000000", "Effect": "Deny", "Action": "*", "Resource": "*",
  "Condition": {"StringEquals": {"aws:SourceIdentity": "0123456789abcdef01234567", "aws:PrincipalTag/team": "data+ml %20 & é"},
  "DateLessThan": {"aws:TokenIssueTime": "2026-11-26T12:00:00Z"}}}]}`

// calls is what a client does in the tests: put, get, replace, get,
// delete, then the same on what no longer exists or never did.
type calls struct {
	put    func(role, name, doc string) error
	get    func(role, name string) (string, error)
	delete func(role, name string) error
	// code is the error's code; noSuchEntity whether it is the client's
	// "no such entity".
	code         func(err error) string
	noSuchEntity func(err error) bool
}

func run(t *testing.T, c calls) {
	t.Helper()
	if err := c.put(role, policyName, revocation); err != nil {
		t.Fatal(err)
	}
	if got, err := c.get(role, policyName); err != nil || got != revocation {
		t.Errorf("get: %q, %v\nwant %q", got, err, revocation)
	}
	replaced := strings.Replace(revocation, "S0123T", "S4567T", 1)
	if err := c.put(role, policyName, replaced); err != nil {
		t.Fatal(err)
	}
	if got, err := c.get(role, policyName); err != nil || got != replaced {
		t.Errorf("get: %q, %v\nwant %q", got, err, replaced)
	}
	if err := c.delete(role, policyName); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get of a deleted policy":    second(c.get(role, policyName)),
		"delete of a deleted policy": c.delete(role, policyName),
		"put on a missing role":      c.put("not-a-role", policyName, revocation),
		"get on a missing role":      second(c.get("not-a-role", policyName)),
	} {
		if !c.noSuchEntity(err) || c.code(err) != "NoSuchEntity" {
			t.Errorf("%s: %v, want NoSuchEntity", name, err)
		}
	}
	if err := c.put(role, policyName, `{"Statement": {"Effect": "Deny"}}`); c.code(err) != "MalformedPolicyDocument" || c.noSuchEntity(err) {
		t.Errorf("a malformed policy: %v", err)
	}
	big := `{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceIdentity": ["` +
		strings.Repeat("0123456789abcdef01234567", 430) + `"]}}}}`
	if err := c.put(role, policyName, big); c.code(err) != "LimitExceeded" {
		t.Errorf("a policy over IAM's limit: %v", err)
	}
}

func second(_ string, err error) error { return err }

// TestSameRequestsAsTheSDK: the stand-in takes the SDK's client's
// requests, and this package's client sends the same ones and reads the
// same answers (the document decoded, where the SDK leaves it encoded).
func TestSameRequestsAsTheSDK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, "")
	code := func(err error) string {
		var e smithy.APIError
		if errors.As(err, &e) {
			return e.ErrorCode()
		}
		return ""
	}

	viaSDK := awstest.New(t, brokerKey, brokerSecret, "eu-central-1")
	viaSDK.CreateRole(role, 0)
	sdk := iam.New(iam.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(viaSDK.URL), RetryMaxAttempts: 1})
	run(t, calls{
		put: func(r, name, doc string) error {
			_, err := sdk.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(r), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
			return err
		},
		get: func(r, name string) (string, error) {
			out, err := sdk.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(r), PolicyName: aws.String(name)})
			if err != nil {
				return "", err
			}
			if doc := aws.ToString(out.PolicyDocument); strings.ContainsAny(doc, `{" `) {
				t.Errorf("the SDK's document is not URL-encoded: %s", doc)
			}
			return url.PathUnescape(aws.ToString(out.PolicyDocument))
		},
		delete: func(r, name string) error {
			_, err := sdk.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(r), PolicyName: aws.String(name)})
			return err
		},
		code:         code,
		noSuchEntity: func(err error) bool { var e *types.NoSuchEntityException; return errors.As(err, &e) },
	})

	viaUs := awstest.New(t, brokerKey, brokerSecret, "eu-central-1")
	viaUs.CreateRole(role, 0)
	ours := &awsiam.Client{Credentials: creds, Endpoint: viaUs.URL}
	run(t, calls{
		put:    func(r, name, doc string) error { return ours.PutRolePolicy(ctx, r, name, doc) },
		get:    func(r, name string) (string, error) { return ours.GetRolePolicy(ctx, r, name) },
		delete: func(r, name string) error { return ours.DeleteRolePolicy(ctx, r, name) },
		code: func(err error) string {
			var e *awsquery.Error
			if errors.As(err, &e) {
				return e.Code
			}
			return ""
		},
		noSuchEntity: func(err error) bool { return errors.Is(err, awsiam.ErrNoSuchEntity) },
	})

	a, b := viaSDK.Calls(), viaUs.Calls()
	if len(a) != 11 || len(a) != len(b) {
		t.Fatalf("%d calls by the SDK, %d by ours; want 11", len(a), len(b))
	}
	for i := range a {
		if !reflect.DeepEqual(a[i].Params, b[i].Params) || a[i].Body != b[i].Body {
			t.Errorf("call %d:\nSDK  %s\nours %s", i, a[i].Body, b[i].Body)
		}
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	srv := awstest.New(t, brokerKey, brokerSecret, "eu-central-1")
	c := &awsiam.Client{Credentials: credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, ""), Endpoint: srv.URL}
	_, err := c.GetRolePolicy(context.Background(), role, policyName)
	const want = "policy warden-revocations of role agent-runtime: iam GetRolePolicy: NoSuchEntity (HTTP 404): The role with name agent-runtime cannot be found."
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	srv := awstest.New(t, brokerKey, brokerSecret, "eu-central-1")
	c := &awsiam.Client{Credentials: credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, ""), Endpoint: srv.URL}
	ctx := context.Background()
	for _, tt := range []struct {
		err  error
		want string
	}{
		{c.PutRolePolicy(ctx, "", policyName, revocation), `iam: invalid input: role name "": want 1 to 64 letters, digits or _+=,.@-`},
		{c.PutRolePolicy(ctx, role, "a/b", revocation), `iam: invalid input: policy name "a/b": want 1 to 128 letters, digits or _+=,.@-`},
		{c.PutRolePolicy(ctx, role, policyName, ""), "iam: invalid input: put policy warden-revocations of role agent-runtime: an empty document"},
		{second(c.GetRolePolicy(ctx, strings.Repeat("r", 65), policyName)), `iam: invalid input: role name "` + strings.Repeat("r", 65) + `": want 1 to 64 letters, digits or _+=,.@-`},
		{c.DeleteRolePolicy(ctx, role, strings.Repeat("p", 129)), `iam: invalid input: policy name "` + strings.Repeat("p", 129) + `": want 1 to 128 letters, digits or _+=,.@-`},
	} {
		if tt.err == nil || tt.err.Error() != tt.want || !errors.Is(tt.err, awsiam.ErrInvalidInput) {
			t.Errorf("error %v\nwant  %s", tt.err, tt.want)
		}
	}
	if calls := srv.Calls(); len(calls) != 0 {
		t.Errorf("sent %+v", calls)
	}
}

// TestListRolePolicies: every name, across pages, as the SDK's client's
// paginator reads them; and the size limit is ErrLimitExceeded.
func TestListRolePolicies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, "")
	stand := awstest.New(t, brokerKey, brokerSecret, "eu-central-1")
	stand.CreateRole(role, 0)
	ours := &awsiam.Client{Credentials: creds, Endpoint: stand.URL}
	var want []string
	for i := range 110 { // two pages of 100, within the size limit
		name := fmt.Sprintf("warden-revoked-S%03d", i)
		if err := ours.PutRolePolicy(ctx, role, name, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	got, err := ours.ListRolePolicies(ctx, role)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ours: %d names, %v", len(got), err)
	}
	sdk := iam.New(iam.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(stand.URL), RetryMaxAttempts: 1})
	var viaSDK []string
	for p := iam.NewListRolePoliciesPaginator(sdk, &iam.ListRolePoliciesInput{RoleName: aws.String(role)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		viaSDK = append(viaSDK, out.PolicyNames...)
	}
	if !slices.Equal(viaSDK, want) {
		t.Errorf("the SDK's paginator read %d names", len(viaSDK))
	}
	if _, err := ours.ListRolePolicies(ctx, "not-a-role"); !errors.Is(err, awsiam.ErrNoSuchEntity) {
		t.Errorf("a missing role: %v", err)
	}
	big := `{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceIdentity": ["` +
		strings.Repeat("0123456789abcdef01234567", 430) + `"]}}}}`
	if err := ours.PutRolePolicy(ctx, role, "big", big); !errors.Is(err, awsiam.ErrLimitExceeded) {
		t.Errorf("over the limit: %v", err)
	}
}
