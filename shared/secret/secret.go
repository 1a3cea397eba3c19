// Package secret is the port through which Warden reads its secrets —
// Slack and Telegram bot tokens, webhook signing keys, provider keys, the
// audit signing key — by name, without holding them in configuration. It
// is a leaf package, so that an adapter (Secrets Manager) or a small
// function can depend on it without the notifier and the policy engine.
package secret

import (
	"context"
	"errors"
)

// Source resolves a secret's name to its value.
type Source interface {
	Get(ctx context.Context, name string) (string, error)
}

// ErrNotSet is returned (wrapped) when a secret is not set.
var ErrNotSet = errors.New("secret not set")

// MaxBytes bounds a secret's value.
const MaxBytes = 4096
