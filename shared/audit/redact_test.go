package audit

import (
	"regexp"
	"strings"
	"testing"
)

var testRedactor = NewRedactor([]byte("0123456789abcdef0123456789abcdef"))

// tagRE matches a redaction tag.
var tagRE = regexp.MustCompile(`\[REDACTED:[0-9a-f]{12}\]`)

func TestRedactString(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"git push origin main", "git push origin main"},
		{`curl -H "Authorization: Bearer abcdefgh12345678" https://x`, `curl -H "Authorization: T" https://x`},
		{"export ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijklmnopqrstuv", "export ANTHROPIC_API_KEY=T"},
		{"OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz codex", "OPENAI_API_KEY=T codex"},
		{"mysql --password=hunter2 -u root", "mysql --password=T -u root"},
		{"psql postgres://admin:hunter2@db.internal:5432/app", "psql postgres://admin:T@db.internal:5432/app"},
		{"psql postgres://u@h/db?password=hunter2&x=1", "psql postgres://u@h/db?password=T&x=1"},
		{"aws configure set aws_secret_access_key wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "aws configure set aws_secret_access_key T"},
		{"echo AKIAIOSFODNN7EXAMPLE", "echo T"},
		{"slack xoxb-1234567890-abcdefghij", "slack T"},
		{"gh auth login --token ghp_abcdefghijklmnopqrstuvwx", "gh auth login --token T"},
		{"curl -H 'x: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'", "curl -H 'x: T'"},
		{"cat > k <<EOF\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\nEOF", "cat > k <<EOF\nT\nEOF"},
		{"token: wdn_s_abc_def", "token: T"},
	}
	for _, tt := range tests {
		got := tagRE.ReplaceAllString(testRedactor.String(tt.in), "T")
		if got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRedactCorrelates: equal secrets get equal tags, different ones and
// different keys different tags, and no tag contains the secret.
func TestRedactCorrelates(t *testing.T) {
	t.Parallel()
	a1 := testRedactor.String("curl -H 'Authorization: Bearer token-one-1234567'")
	a2 := testRedactor.String("wget --header='Authorization: Bearer token-one-1234567'")
	b := testRedactor.String("curl -H 'Authorization: Bearer token-two-1234567'")
	other := NewRedactor([]byte("another key of at least 32 bytes!")).String("curl -H 'Authorization: Bearer token-one-1234567'")
	tag := func(s string) string { return tagRE.FindString(s) }
	if tag(a1) == "" || tag(a1) != tag(a2) {
		t.Errorf("equal secrets, different tags: %q %q", a1, a2)
	}
	if tag(a1) == tag(b) || tag(a1) == tag(other) {
		t.Errorf("tags collide: %q %q %q", a1, b, other)
	}
	if strings.Contains(a1+a2+b, "token-") {
		t.Errorf("secret left in %q %q %q", a1, a2, b)
	}
}

func TestRedactJSON(t *testing.T) {
	t.Parallel()
	got := tagRE.ReplaceAllString(string(testRedactor.JSON(map[string]any{
		"command": "curl -u x --token abcdefghijklmnop https://api",
		"env":     map[string]any{"API_KEY": "abc", "HOME": "/root", "DB_PASSWORD": 12345},
		"headers": []any{"Authorization: Basic dXNlcjpwYXNzd29yZA=="},
		"n":       3,
	})), "T")
	want := `{"command":"curl -u x --token T https://api","env":{"API_KEY":"T","DB_PASSWORD":"[REDACTED]","HOME":"/root"},"headers":["Authorization: T"],"n":3}`
	if got != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzMayHoldSecret checks the shortcut of Redactor.String and of secret
// keys against the patterns themselves: whatever mayHoldSecret says
// cannot hold a secret, the patterns leave alone, and whatever key has no
// hint, secretKey does not match.
func FuzzMayHoldSecret(f *testing.F) {
	for _, s := range []string{"anthropic/claude-sonnet-4-5", "git push origin main", "/workspace/src/main.go",
		"sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "curl -H 'Authorization: Bearer abcdefghijkl'", "AKIAIOSFODNN7EXAMPLE",
		"export AWS_SECRET_ACCESS_KEY wJalrXUtnFEMI", "ghp_abcdefghijklmnopqrstuvwxyz0123", "ſk-abcdefghijklmnopqrst",
		"xoxb-1234567890-abcdef", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijkl", "basic dXNlcjpwYXNzd29yZA==",
		"api_key", "X-Api-Key", "max_tokens", "model", "sessionKey", "ΡASSWORD"} {
		f.Add(s)
	}
	rd := NewRedactor(make([]byte, 32))
	f.Fuzz(func(t *testing.T, s string) {
		if !mayHoldSecret(s) {
			if got := rd.scrub(s); got != s {
				t.Errorf("mayHoldSecret(%q) = false, but the patterns redact it to %q", s, got)
			}
		}
		if !hasHint(s, secretKeyHints) && secretKey.MatchString(s) {
			t.Errorf("key %q has no hint, but secretKey matches it", s)
		}
	})
}
