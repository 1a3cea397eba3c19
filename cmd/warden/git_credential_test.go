package main

import (
	"bytes"
	"strings"
	"testing"
)

// gitCredential runs warden git-credential get for endpoint with input.
func gitCredential(input, endpoint string) (int, string) {
	var out, errOut bytes.Buffer
	code := run([]string{"git-credential", "get", "--endpoint", endpoint, "--token", "wdn_s_secret_token"}, strings.NewReader(input), &out, &errOut)
	return code, out.String()
}

// TestGitCredential: the helper answers the token for the endpoint's
// scheme and host (whatever the path, which git may leave out), and
// nothing for another host, scheme or port; malformed input is an error.
func TestGitCredential(t *testing.T) {
	const endpoint = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
	for _, tt := range []struct{ input, want string }{
		{"protocol=https\nhost=abc123.execute-api.eu-west-1.amazonaws.com\n\n", "username=warden\npassword=wdn_s_secret_token\n"},
		{"protocol=https\nhost=abc123.execute-api.eu-west-1.amazonaws.com\npath=prod/git/github.com/acme/web.git\n", "username=warden\npassword=wdn_s_secret_token\n"},
		{"protocol=https\nhost=github.com\n\n", ""},
		{"protocol=http\nhost=abc123.execute-api.eu-west-1.amazonaws.com\n\n", ""},
		{"protocol=https\nhost=abc123.execute-api.eu-west-1.amazonaws.com:8443\n\n", ""},
		{"host=abc123.execute-api.eu-west-1.amazonaws.com\n\n", ""},
	} {
		if code, out := gitCredential(tt.input, endpoint); code != 0 || out != tt.want {
			t.Errorf("%q: %d %q, want %q", tt.input, code, out, tt.want)
		}
	}
	if code, out := gitCredential("not a key value line\n", endpoint); code == 0 || out != "" {
		t.Errorf("malformed input: %d %q", code, out)
	}
	if code, out := gitCredential(strings.Repeat("k", 70<<10)+"=v\n", endpoint); code == 0 || out != "" {
		t.Errorf("input over 64 KiB: %d %q", code, out)
	}
}

// FuzzGitCredential: whatever git's input, the token goes out only for
// the endpoint's own scheme and host.
func FuzzGitCredential(f *testing.F) {
	f.Add("protocol=https\nhost=warden.example.com\npath=git/x.git\n\n")
	f.Add("protocol=https\nhost=warden.example.com\nhost=evil.example.com\n")
	f.Add("protocol=https\r\nhost=warden.example.com\r\n")
	f.Fuzz(func(t *testing.T, input string) {
		_, out := gitCredential(input, "https://warden.example.com/prod")
		if out == "" {
			return
		}
		in, err := readCredentialRequest(strings.NewReader(input))
		if err != nil || in["protocol"] != "https" || in["host"] != "warden.example.com" {
			t.Fatalf("the token went out for %q", input)
		}
	})
}
