package audit

import (
	"encoding/json"
	"regexp"
)

// Redacted replaces a secret in audit records and logs.
const Redacted = "[REDACTED]"

// secretKey matches object keys whose values are secrets.
var secretKey = regexp.MustCompile(`(?i)(pass(word|wd)?|secret|token|api[_-]?key|authorization|credential|private[_-]?key|session[_-]?key|cookie)`)

// Secrets inside free text: a value whose name says it is secret
// (password=…, token: …, --token …), and known credential shapes.
var (
	namedSecret = regexp.MustCompile(`(?i)((?:pass(?:word|wd)?|secret|token|api[_-]?key)["']?\s*[=:]\s*["']?)[^\s"'&]+`)
	flagSecret  = regexp.MustCompile(`(?i)((?:--(?:pass(?:word)?|token|secret|api-key)|aws_secret_access_key)[= ]\s*)[^\s"']+`)
	secretShape = regexp.MustCompile(`(?i)sk-(?:ant-)?[A-Za-z0-9_-]{16,}|xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}` +
		`|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|wdn_[sea]_[A-Za-z0-9._-]+` +
		`|[0-9]{6,}:[A-Za-z0-9_-]{30,}|(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`)
)

// RedactString removes secrets from free text such as a command line.
func RedactString(s string) string {
	s = namedSecret.ReplaceAllString(s, "${1}"+Redacted)
	s = flagSecret.ReplaceAllString(s, "${1}"+Redacted)
	return secretShape.ReplaceAllString(s, Redacted)
}

// Redact returns v as JSON with secrets removed: the values of keys that
// name secrets, and secret shapes inside every string.
func Redact(v any) json.RawMessage {
	b, err := json.Marshal(redactValue("", v))
	if err != nil {
		return json.RawMessage(`"` + Redacted + `"`)
	}
	return b
}

func redactValue(key string, v any) any {
	if key != "" && secretKey.MatchString(key) {
		if _, isMap := v.(map[string]any); !isMap {
			return Redacted
		}
	}
	switch x := v.(type) {
	case string:
		return RedactString(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = redactValue(k, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactValue("", e)
		}
		return out
	}
	return v
}
