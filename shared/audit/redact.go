package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Redacted marks a removed secret whose value is not correlated.
const Redacted = "[REDACTED]"

// secretKey matches object keys whose values are secrets.
var secretKey = regexp.MustCompile(`(?i)(pass(word|wd)?|secret|token|api[_-]?key|authorization|credential|private[_-]?key|session[_-]?key|cookie)`)

// Secrets inside free text. namedSecret and flagSecret capture the name
// (kept) and the value (replaced); secretShape matches whole credentials.
var (
	namedSecret = regexp.MustCompile(`(?i)((?:pass(?:word|wd)?|secret|token|api[_-]?key)["']?\s*[=:]\s*["']?)([^\s"'&]+)`)
	flagSecret  = regexp.MustCompile(`(?i)((?:--(?:pass(?:word)?|token|secret|api-key)|aws_secret_access_key)[= ]\s*)([^\s"']+)`)
	urlPassword = regexp.MustCompile(`([a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)`)
	secretShape = regexp.MustCompile(`(?i)sk-(?:ant-)?[A-Za-z0-9_-]{16,}|xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}` +
		`|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|wdn_[sea]_[A-Za-z0-9._-]+` +
		`|[0-9]{6,}:[A-Za-z0-9_-]{30,}|(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}` +
		`|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}` +
		`|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)`)
)

// Redactor removes secrets from what is recorded: API keys, bearer tokens,
// AWS keys, private keys, JWTs, passwords in command lines and URLs. Each
// is replaced by [REDACTED:<tag>], where the tag is a keyed hash of the
// secret: equal secrets get equal tags, so they can be correlated across
// records, but a tag reveals nothing without the key.
type Redactor struct {
	key []byte
}

// NewRedactor returns a redactor with a secret key of at least 32 bytes.
func NewRedactor(key []byte) *Redactor {
	return &Redactor{key: append([]byte(nil), key...)}
}

// tag replaces one secret.
func (rd *Redactor) tag(secret string) string {
	if rd == nil || len(rd.key) == 0 {
		return Redacted
	}
	m := hmac.New(sha256.New, rd.key)
	m.Write([]byte(secret))
	return "[REDACTED:" + hex.EncodeToString(m.Sum(nil))[:12] + "]"
}

// String removes secrets from free text such as a command line.
func (rd *Redactor) String(s string) string {
	if !mayHoldSecret(s) {
		return s
	}
	return rd.scrub(s)
}

// secretHints are, lower-cased, what every secret pattern that needs
// neither '=', ':' nor "--" has in it: a text with none of them (and none
// of those three) matches no pattern. secretKeyHints are the same for
// secretKey. FuzzMayHoldSecret holds both to the patterns.
var (
	secretHints    = []string{"aws_secret_access_key", "sk-", "xox", "xapp-", "gh", "akia", "asia", "wdn_", "bearer", "basic", "eyj"}
	secretKeyHints = []string{"pass", "secret", "token", "api", "authorization", "credential", "private", "session", "cookie"}
)

// mayHoldSecret reports whether s may match one of the secret patterns:
// false is certain, true means the patterns must be run. Most of what is
// recorded (model IDs, paths, plain commands) is false, and the patterns
// are a good part of a decision's CPU time.
func mayHoldSecret(s string) bool {
	return strings.ContainsAny(s, "=:") || strings.Contains(s, "--") || hasHint(s, secretHints)
}

// hasHint reports whether s holds one of hints (lower-case ASCII) in any
// case. A text that is not all ASCII counts as holding one: Unicode case
// folding (the patterns' (?i)) maps some other letters onto ASCII ones.
func hasHint(s string, hints []string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	lower := strings.ToLower(s)
	for _, h := range hints {
		if strings.Contains(lower, h) {
			return true
		}
	}
	return false
}

// scrub runs the secret patterns over s.
func (rd *Redactor) scrub(s string) string {
	for _, re := range []*regexp.Regexp{namedSecret, flagSecret, urlPassword} {
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			sub := re.FindStringSubmatch(m)
			rest := ""
			if len(sub) > 3 {
				rest = sub[3]
			}
			return sub[1] + rd.tag(sub[2]) + rest
		})
	}
	return secretShape.ReplaceAllStringFunc(s, rd.tag)
}

// JSON returns v as JSON with secrets removed: the values of keys that name
// secrets, and secret shapes inside every string.
func (rd *Redactor) JSON(v any) json.RawMessage {
	b, err := json.Marshal(rd.value("", v))
	if err != nil {
		return json.RawMessage(`"` + Redacted + `"`)
	}
	return b
}

func (rd *Redactor) value(key string, v any) any {
	if key != "" && hasHint(key, secretKeyHints) && secretKey.MatchString(key) {
		switch x := v.(type) {
		case map[string]any, []any:
		case string:
			return rd.tag(x)
		default:
			return Redacted
		}
	}
	switch x := v.(type) {
	case string:
		return rd.String(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = rd.value(k, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rd.value("", e)
		}
		return out
	}
	return v
}
