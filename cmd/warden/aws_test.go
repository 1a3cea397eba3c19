package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/broker"
)

// TestAWSProfile: the profile is added to an AWS config file, replaces its
// own earlier section, keeps every other profile and comment, and leaves
// the file readable by its owner only.
func TestAWSProfile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "aws", "config")
	section := awsProfileSection("warden", "/usr/local/bin/warden", "http://127.0.0.1:8080", "wdn_s_abc_def")
	if err := writeAWSProfile(path, "warden", section); err != nil {
		t.Fatal(err)
	}
	mine := "[default]\nregion = eu-central-1\n\n# work\n[profile work]\nsso_session = corp\n"
	if err := os.WriteFile(path, []byte(mine+"\n"+section+"\n[profile after]\nregion = us-east-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	again := awsProfileSection("warden", "/opt/my tools/warden", "http://127.0.0.1:9090", "wdn_s_new_tok")
	if err := writeAWSProfile(path, "warden", again); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	if strings.Count(got, "[profile warden]") != 1 || !strings.HasPrefix(got, mine) || !strings.Contains(got, "[profile after]\nregion = us-east-1\n") ||
		!strings.HasSuffix(got, again) || strings.Contains(got, "wdn_s_abc_def") {
		t.Errorf("config:\n%s", got)
	}
	if !strings.Contains(again, "credential_process = '/opt/my tools/warden' aws credential-process --endpoint http://127.0.0.1:9090 --token wdn_s_new_tok\n") {
		t.Errorf("section %q", again)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
}

// TestCredentialCache: kept credentials are used until five minutes before
// they expire; the file is the user's alone and named without the token.
func TestCredentialCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := &apiClient{endpoint: "http://127.0.0.1:8080", token: "wdn_s_abc_secret"}
	path, err := credentialCachePath(dir, c, broker.Request{})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := credentialCachePath(dir, c, broker.Request{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::b/k"})
	if path == other || strings.Contains(path, "secret") {
		t.Errorf("paths %s, %s", path, other)
	}
	now := time.Now()
	creds := broker.Credentials{Version: 1, AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t", Expiration: now.Add(10 * time.Minute)}
	if err := cacheCredentials(path, creds); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
	if got, ok := cachedCredentials(path, now); !ok || got.AccessKeyID != "ASIAEXAMPLE" {
		t.Errorf("fresh: %+v %v", got, ok)
	}
	if _, ok := cachedCredentials(path, now.Add(6*time.Minute)); ok {
		t.Error("credentials 4 minutes from expiry were used")
	}
	if _, ok := cachedCredentials(other, now); ok {
		t.Error("missing credentials were used")
	}
}
