package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/s3store/s3test"
)

// TestPolicyPush uploads policies to a versioned bucket of the S3
// emulator with the real client: a valid one becomes a new object
// version, an invalid one is refused before anything is sent.
func TestPolicyPush(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client()
	bucket := srv.Bucket(t, false)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	current := func() string {
		out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(awsconfig.PolicyKey)})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		data, _ := io.ReadAll(out.Body)
		return string(data)
	}
	good := "version: 1\nrules:\n  - {id: shell, effect: allow, action: tool:Bash, command: \"*\"}\n"
	var out, errOut bytes.Buffer
	if err := pushPolicy(t.Context(), client, bucket, write("good.yaml", good), &out, &errOut); err != nil {
		t.Fatalf("push: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "pushed to s3://"+bucket+"/policy.yaml (object version ") || current() != good {
		t.Errorf("after a push: %q; object %q", out.String(), current())
	}
	bad := "version: 1\nrules:\n  - {id: shell, effect: alow, action: tool:Bash}\n"
	out.Reset()
	err := pushPolicy(t.Context(), client, bucket, write("bad.yaml", bad), &out, &errOut)
	if code, ok := err.(exitError); !ok || code.code != 1 || !strings.Contains(errOut.String(), "bad.yaml:3:") || !strings.Contains(errOut.String(), "not pushed") {
		t.Errorf("an invalid policy: %v, stderr %q", err, errOut.String())
	}
	if current() != good {
		t.Errorf("an invalid policy replaced the object: %q", current())
	}
}
