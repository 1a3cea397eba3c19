package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/wardenhq/warden/shared/secret"
)

// Secrets resolves the secret a channel names (its secret: in the policy)
// to its value: a Slack bot token, a Telegram bot token, a webhook's
// signing key. The local server reads them from the environment
// (EnvSecrets); a deployment on AWS from Secrets Manager.
type Secrets = secret.Source

// ErrNoSecret is returned (wrapped) when a secret is not set.
var ErrNoSecret = secret.ErrNotSet

// MaxSecretBytes bounds a secret's value.
const MaxSecretBytes = secret.MaxBytes

// EnvSecrets reads secrets from environment variables: the secret named
// "slack-bot-token" is the variable WARDEN_SECRET_SLACK_BOT_TOKEN (see
// EnvName).
type EnvSecrets struct {
	// LookupEnv reads a variable; os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
}

var _ Secrets = EnvSecrets{}

// EnvName is the environment variable that holds the secret name:
// WARDEN_SECRET_ followed by the name in upper case, with every run of
// characters other than ASCII letters and digits turned into one
// underscore, and none at either end. So "slack-bot-token" is
// WARDEN_SECRET_SLACK_BOT_TOKEN and "warden/slack-bot-token" is
// WARDEN_SECRET_WARDEN_SLACK_BOT_TOKEN. It returns "" for a name without
// letters or digits.
func EnvName(name string) string {
	var b strings.Builder
	sep := false
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		default:
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('_')
		}
		sep = false
		b.WriteRune(r)
		if b.Len() > 200 {
			return ""
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "WARDEN_SECRET_" + b.String()
}

// Get implements Secrets.
func (e EnvSecrets) Get(_ context.Context, name string) (string, error) {
	env := EnvName(name)
	if env == "" {
		return "", fmt.Errorf("secret %q: the name cannot be read from the environment: %w", name, ErrNoSecret)
	}
	lookup := e.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(env)
	if !ok || strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("secret %q: environment variable %s is not set: %w", name, env, ErrNoSecret)
	}
	return v, nil
}

// checkSecret trims a secret's value and refuses one that is too long or
// holds spaces or control characters, which a token never does and which
// would end up in an HTTP header or URL. The error never shows the value.
func checkSecret(name, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", fmt.Errorf("secret %q is empty: %w", name, ErrNoSecret)
	}
	if len(v) > MaxSecretBytes {
		return "", fmt.Errorf("secret %q is %d bytes; the limit is %d", name, len(v), MaxSecretBytes)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] == 0x7f {
			return "", fmt.Errorf("secret %q holds spaces or control characters", name)
		}
	}
	return v, nil
}

// scrub returns err with each secret's value replaced by "[redacted]" in
// its text. A scrubbed error wraps nothing, so that no caller can reach
// the original text.
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg, changed = strings.ReplaceAll(msg, s, "[redacted]"), true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}
