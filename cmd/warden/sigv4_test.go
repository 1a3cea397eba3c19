package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/cloud"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/lambdas/apigwtest"
	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/secret"
	"github.com/wardenhq/warden/shared/sigv4test"
)

// TestAdminOverSigV4: against a deployment on AWS, the admin commands sign
// their requests with the operator's AWS credentials and send no token;
// API Gateway (a stand-in that checks the signature) passes the IAM
// principal to the api function, which records it as the actor. A request
// signed with other credentials is refused by API Gateway.
func TestAdminOverSigV4(t *testing.T) {
	// The AWS SDK reads the operator's credentials from the environment.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAOPERATOR")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "operator-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv(adminTokenEnv, "")

	db := dynamotest.DB(t, dynamotest.Client(t))
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("version: 1\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := cloud.New(t.Context(), cloud.Options{DB: db, Policy: policyload.File(policyFile), Admin: true,
		Secrets: secret.Map{"audit-signing-key": strings.Repeat("s", 40)}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	caller := apigwtest.Caller{ARN: "arn:aws:iam::123456789012:user/operator",
		Credentials: sigv4test.Credentials{AccessKey: "AKIAOPERATOR", SecretKey: "operator-secret", Region: "eu-central-1", Service: "execute-api"}}
	gw := httptest.NewServer(&apigwtest.StandIn{Function: lambdas.Buffered(app.Handler()), IAM: []string{"/v1/admin/"}, Caller: caller})
	t.Cleanup(gw.Close)

	cli := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := run(append(args, "--endpoint", gw.URL, "--aws-region", "eu-central-1"), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := cli("projects", "create", "web"); code != 0 || !strings.Contains(out, "wdn_e_") {
		t.Fatalf("projects create: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := cli("projects", "list"); code != 0 || !strings.Contains(out, "web") {
		t.Fatalf("projects list: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := cli("projects", "freeze", "web", "--reason", "incident 7"); code != 0 {
		t.Fatalf("projects freeze: %d %s", code, errOut)
	}
	p, err := app.Server.Identity.Projects(t.Context())
	if err != nil || len(p) != 1 || !p[0].Frozen || !strings.HasPrefix(p[0].FrozenBy, "arn:aws:iam::123456789012:user/operator") {
		t.Errorf("project after freeze: %+v, %v; want frozen by the IAM principal", p, err)
	}

	// Other credentials: API Gateway refuses, nothing reaches the function.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-operators")
	if code, _, errOut := cli("projects", "create", "api"); code == 0 || !strings.Contains(errOut, "signature we calculated does not match") {
		t.Errorf("projects create with a wrong secret: %d %s", code, errOut)
	}
	if p, _ := app.Server.Identity.Projects(t.Context()); len(p) != 1 {
		t.Errorf("%d projects after a refused request", len(p))
	}
}

func TestSigV4Region(t *testing.T) {
	t.Parallel()
	for endpoint, want := range map[string]string{
		"https://k3x9w2v7q1.execute-api.eu-central-1.amazonaws.com/dev": "eu-central-1",
		"https://k3x9w2v7q1.execute-api.us-east-1.amazonaws.com":        "us-east-1",
		"http://127.0.0.1:8080":                                       "",
		"https://warden.example.com":                                  "",
		"https://execute-api.eu-central-1.amazonaws.com.evil.example": "",
	} {
		if got := sigv4Region(endpoint, ""); got != want {
			t.Errorf("sigv4Region(%q) = %q, want %q", endpoint, got, want)
		}
	}
	if got := sigv4Region("https://warden.example.com", "eu-west-1"); got != "eu-west-1" {
		t.Errorf("--aws-region ignored: %q", got)
	}
}
