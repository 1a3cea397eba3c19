package awstest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/awsquery/awstest"
)

// TestAWSCLI: Debian's AWS CLI (botocore, another signer than the Go
// SDK's) reads an object with issued credentials as an agent would,
// `aws s3api get-object --endpoint-url`, is refused what the session
// policy does not allow, and is refused once the session is revoked.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	bin := awstest.CLI(t)
	w := newWorld(t)
	c := w.assume(t, "0123456789abcdef01234567", sessionPolicy)
	dir := t.TempDir()
	run := func(key string) (string, error) {
		out := filepath.Join(dir, "out")
		cmd := exec.Command(bin, "s3api", "get-object", "--endpoint-url", w.srv.URL, "--bucket", "data-lake", "--key", key, out)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"), "AWS_EC2_METADATA_DISABLED=true",
			"AWS_ACCESS_KEY_ID=" + c.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey, "AWS_SESSION_TOKEN=" + c.SessionToken,
			"AWS_DEFAULT_REGION=" + region, "AWS_RETRY_MODE=standard", "AWS_MAX_ATTEMPTS=1"}
		msg, err := cmd.CombinedOutput()
		if err != nil {
			return string(msg), err
		}
		body, err := os.ReadFile(out)
		return string(body), err
	}
	if got, err := run("raw/2026/a.csv"); err != nil || got != "id,value\n1,42\n" {
		t.Fatalf("aws s3api get-object: %v: %s", err, got)
	}
	if got, err := run("curated/b.csv"); err == nil || !strings.Contains(got, "AccessDenied") {
		t.Errorf("aws s3api get-object of an object the session policy does not allow: %v: %s", err, got)
	}
	deny := `{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceIdentity": "0123456789abcdef01234567"}}}}`
	if err := w.iam.PutRolePolicy(context.Background(), role, "warden-revocations", deny); err != nil {
		t.Fatal(err)
	}
	if got, err := run("raw/2026/a.csv"); err == nil || !strings.Contains(got, "AccessDenied") {
		t.Errorf("aws s3api get-object once revoked: %v: %s", err, got)
	}
}
