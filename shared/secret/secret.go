// Package secret is the port through which Warden reads its secrets —
// Slack and Telegram bot tokens, webhook signing keys, provider keys, the
// audit signing key — by name, without holding them in configuration. It
// is a leaf package, so that an adapter (Secrets Manager) or a small
// function can depend on it without the notifier and the policy engine.
package secret

import (
	"context"
	"errors"
	"fmt"
)

// Source resolves a secret's name to its value.
type Source interface {
	Get(ctx context.Context, name string) (string, error)
}

// ErrNotSet is returned (wrapped) when a secret is not set.
var ErrNotSet = errors.New("secret not set")

// MaxBytes bounds a secret's value.
const MaxBytes = 4096

// Map is a Source of fixed values, by name: for tests and tools. A name
// it has not is ErrNotSet.
type Map map[string]string

// Get implements Source.
func (m Map) Get(_ context.Context, name string) (string, error) {
	v, ok := m[name]
	if !ok {
		return "", fmt.Errorf("secret %q: %w", name, ErrNotSet)
	}
	return v, nil
}
