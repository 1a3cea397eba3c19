package lambdas

import (
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/awsconfig"
)

func TestLoadEnv(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	lambda := []string{"AWS_REGION", "eu-central-1", "AWS_ACCESS_KEY_ID", "ASIAROLE", "AWS_SECRET_ACCESS_KEY", "s3cr3t", "AWS_SESSION_TOKEN", "tok",
		awsconfig.EnvAuditTable, "audit"}
	e, err := loadEnv(env(append(lambda, "AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1", "AWS_ENDPOINT_URL", "http://127.0.0.1:2")...), awsconfig.EnvAuditTable)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := e.AWS.Credentials.Retrieve(t.Context())
	if err != nil || e.AWS.Region != "eu-central-1" || creds.AccessKeyID != "ASIAROLE" || creds.SecretAccessKey != "s3cr3t" || creds.SessionToken != "tok" {
		t.Errorf("AWS configuration %+v, credentials %+v, %v", e.AWS, creds, err)
	}
	if e.Endpoint("DYNAMODB") != "http://127.0.0.1:1" || e.Endpoint("S3") != "http://127.0.0.1:2" {
		t.Errorf("endpoints %q %q", e.Endpoint("DYNAMODB"), e.Endpoint("S3"))
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{lambda[2:], "no AWS region"},
		{append([]string{"AWS_REGION", "eu-central-1"}, lambda[6:]...), "no AWS credentials"},
		{lambda[:8], "missing configuration (set by the CDK stack): " + awsconfig.EnvAuditTable},
	} {
		if _, err := loadEnv(env(tc.env...), awsconfig.EnvAuditTable); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loadEnv(%v): %v, want %q", tc.env, err, tc.want)
		}
	}
}
