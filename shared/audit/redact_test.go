package audit

import "testing"

func TestRedactString(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"git push origin main", "git push origin main"},
		{`curl -H "Authorization: Bearer abcdefgh12345678" https://x`, `curl -H "Authorization: [REDACTED]" https://x`},
		{"export ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijklmnopqrstuv", "export ANTHROPIC_API_KEY=[REDACTED]"},
		{"mysql --password=hunter2 -u root", "mysql --password=[REDACTED] -u root"},
		{"psql postgres://u@h/db?password=hunter2&x=1", "psql postgres://u@h/db?password=[REDACTED]&x=1"},
		{"aws configure set aws_secret_access_key wJalrXUtnFEMI", "aws configure set aws_secret_access_key [REDACTED]"},
		{"echo AKIAIOSFODNN7EXAMPLE", "echo [REDACTED]"},
		{"slack xoxb-1234567890-abcdefghij", "slack [REDACTED]"},
		{"gh auth login --token ghp_abcdefghijklmnopqrstuvwx", "gh auth login --token [REDACTED]"},
		{"token: wdn_s_abc_def", "token: [REDACTED]"},
	}
	for _, tt := range tests {
		if got := RedactString(tt.in); got != tt.want {
			t.Errorf("RedactString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := string(Redact(map[string]any{
		"command": "curl -u x --token abcdefghijklmnop https://api",
		"env":     map[string]any{"API_KEY": "abc", "HOME": "/root"},
		"headers": []any{"Authorization: Basic dXNlcjpwYXNzd29yZA=="},
		"n":       3,
	}))
	want := `{"command":"curl -u x --token [REDACTED] https://api","env":{"API_KEY":"[REDACTED]","HOME":"/root"},"headers":["Authorization: [REDACTED]"],"n":3}`
	if got != want {
		t.Errorf("Redact:\n%s\nwant:\n%s", got, want)
	}
}
