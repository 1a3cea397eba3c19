package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/awsiam"
	"github.com/wardenhq/warden/shared/awsquery/awstest"
)

// TestAWSCLICredentialProcess: agent setup writes the AWS profile; the real
// AWS CLI (Debian's) gets the session's credentials through
// `warden aws credential-process` and signs a GetObject to AWS's
// stand-in, which verifies the signature with the issued secret and
// evaluates the session policy; a read the policy does not allow is
// refused by AWS itself; once the session is killed, its credentials are
// refused; the issuance is in the trail.
func TestAWSCLICredentialProcess(t *testing.T) {
	t.Parallel()
	bin := awstest.CLI(t)
	const region, brokerKey, brokerSecret = "eu-central-1", "AKIAWARDENBROKERE2E1", "broker-e2e-secret-0123456789abcdefghij"
	stand := awstest.New(t, brokerKey, brokerSecret, region)
	role := stand.CreateRole("Warden-test-AgentRuntime", 12*time.Hour)
	brokerCreds := credentials.NewStaticCredentialsProvider(brokerKey, brokerSecret, "")
	if err := (&awsiam.Client{Credentials: brokerCreds, Endpoint: stand.URL}).PutRolePolicy(context.Background(), "Warden-test-AgentRuntime", "agent-max",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`); err != nil {
		t.Fatal(err)
	}
	stand.PutObject("data-lake", "raw/orders.csv", []byte("id,total\n1,9.99\n"))
	stand.PutObject("data-lake", "curated/report.csv", []byte("secret numbers\n"))

	l := startServe(t, func(c *serveConfig) {
		c.awsRoleARN, c.awsSTSEndpoint, c.awsIAMEndpoint = role, stand.URL, stand.URL
		c.aws = &aws.Config{Region: region, Credentials: brokerCreds}
	})
	home := t.TempDir()
	conf := filepath.Join(home, ".aws", "config")
	code, out, errOut := l.cli(t, "", "agent", "setup", "claude", "--enroll-key", enroll(t, l, "data-pipeline"), "--agent", "loader",
		"--path", filepath.Join(home, "settings.json"), "--llm-gateway=false", "--aws-config", conf, "--warden", selfBinary(t))
	if code != 0 || !strings.Contains(out, "wrote profile warden in "+conf) {
		t.Fatalf("agent setup: %d %s %s", code, out, errOut)
	}
	session := regexp.MustCompile(`session ([0-9a-f]{24})`).FindStringSubmatch(errOut)
	if session == nil {
		t.Fatalf("setup names no session: %s", errOut)
	}
	settings, _ := os.ReadFile(filepath.Join(home, "settings.json"))
	if !strings.Contains(string(settings), `"AWS_PROFILE": "warden"`) {
		t.Errorf("Claude Code's settings do not select the profile: %s", settings)
	}

	awsCLI := func(key string) (string, error) {
		dest := filepath.Join(t.TempDir(), "object")
		cmd := exec.Command(bin, "s3api", "get-object", "--bucket", "data-lake", "--key", key, dest,
			"--profile", "warden", "--region", region, "--endpoint-url", stand.URL)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_CONFIG_FILE=" + conf,
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "no-credentials"), "AWS_EC2_METADATA_DISABLED=true",
			"XDG_CACHE_HOME=" + filepath.Join(home, "cache"), runAsCLIEnv + "=1"}
		msg, err := cmd.CombinedOutput()
		if err != nil {
			return string(msg), err
		}
		body, err := os.ReadFile(dest)
		return string(body), err
	}
	if body, err := awsCLI("raw/orders.csv"); err != nil || body != "id,total\n1,9.99\n" {
		t.Fatalf("aws s3api get-object raw/orders.csv: %v\n%s", err, body)
	}
	if msg, err := awsCLI("curated/report.csv"); err == nil || !strings.Contains(msg, "AccessDenied") {
		t.Errorf("a read the policy does not allow: %v\n%s", err, msg)
	}
	assumed := 0
	for _, c := range stand.Calls() {
		if c.Action == "AssumeRole" {
			assumed++
		}
	}
	if assumed != 1 {
		t.Errorf("%d AssumeRole calls, want 1: the second run uses the kept credentials", assumed)
	}

	if code, _, errOut := l.cli(t, "", l.asAdmin("sessions", "kill", session[1], "--reason", "leaked")...); code != 0 {
		t.Fatalf("sessions kill: %s", errOut)
	}
	if msg, err := awsCLI("raw/orders.csv"); err == nil || !strings.Contains(msg, "AccessDenied") {
		t.Errorf("a killed session's credentials: %v\n%s", err, msg)
	}
	revoked := false
	for name := range stand.RolePolicies("Warden-test-AgentRuntime") {
		revoked = revoked || strings.HasPrefix(name, awsconfig.RevocationPrefix+"S"+session[1]+"-")
	}
	if !revoked {
		t.Errorf("no revocation policy of the session: %v", stand.RolePolicies("Warden-test-AgentRuntime"))
	}

	var issuance *audit.Record
	for _, r := range auditRecords(t, l) {
		if r.Code == audit.AWSCredentials {
			issuance = &r
		}
	}
	if issuance == nil || issuance.Session != session[1] || issuance.Status != "issued" {
		t.Fatalf("no issuance in the trail: %+v", issuance)
	}
	var args map[string]any
	if json.Unmarshal(issuance.Args, &args) != nil || args["source_identity"] != session[1] {
		t.Errorf("issuance record %s", issuance.Args)
	}
}

// TestAWSBrokerOff: without a runtime role the broker is off: asking for
// credentials says so (501), and agent setup writes no AWS profile.
func TestAWSBrokerOff(t *testing.T) {
	t.Parallel()
	l := startServe(t)
	key := enroll(t, l, "data-pipeline")
	home := t.TempDir()
	conf := filepath.Join(home, "config")
	code, out, errOut := l.cli(t, "", "agent", "setup", "claude", "--enroll-key", key, "--agent", "loader",
		"--path", filepath.Join(home, "settings.json"), "--llm-gateway=false", "--aws-config", conf)
	if code != 0 || strings.Contains(out, "profile") {
		t.Fatalf("agent setup: %d %s %s", code, out, errOut)
	}
	if _, err := os.Stat(conf); !os.IsNotExist(err) {
		t.Errorf("an AWS config was written: %v", err)
	}
	token := regexp.MustCompile(`"WARDEN_TOKEN": "([^"]+)"`).FindStringSubmatch(readFile(t, filepath.Join(home, "settings.json")))
	if token == nil {
		t.Fatal("no token in the settings")
	}
	code, _, errOut = l.cli(t, "", "aws", "credential-process", "--token", token[1], "--no-cache")
	if code == 0 || !strings.Contains(errOut, "the AWS credential broker is off") || !strings.Contains(errOut, "HTTP 501") {
		t.Errorf("credential-process: %d %s", code, errOut)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
