// Package awssecrets resolves the secrets that Warden's policy and
// configuration name — a Slack bot token, a Telegram bot token, a
// webhook's signing key — from AWS Secrets Manager: the secret.Source of
// the Lambda functions (the local server reads them from its environment:
// notify.EnvSecrets).
package awssecrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/wardenhq/warden/shared/secret"
)

// API is the part of the Secrets Manager API that Secrets uses;
// *secretsmanager.Client and Caller have it.
type API interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ API = (*secretsmanager.Client)(nil)

const (
	// DefaultTTL is how long a value read is served before it is read
	// again, unless New is given another: a rotated secret is in use
	// within this time.
	DefaultTTL = 5 * time.Minute
	// MaxSecretIDBytes is the longest secret name Secrets Manager takes,
	// the prefix included.
	MaxSecretIDBytes = 512
	// callTimeout bounds one GetSecretValue, which the callers waiting for
	// it share: it does not end with the first caller's context.
	callTimeout = 30 * time.Second
)

// Secrets reads secrets from Secrets Manager: the secret named
// "slack-bot-token" is the secret whose name is the prefix followed by
// "slack-bot-token". A value read is cached for the TTL; callers asking
// for a name together while it is read wait for that one read. Failures
// are not cached. It is safe for concurrent use.
//
// A value must be a SecretString of at most secret.MaxBytes bytes;
// a secret that does not exist, or is blank, is secret.ErrNotSet. No
// error carries a secret's value: failures are described by Secrets
// Manager's error code and message, never by the answer's body.
type Secrets struct {
	client API
	prefix string
	ttl    time.Duration
	now    func() time.Time

	mu       sync.Mutex
	cache    map[string]cached
	inflight map[string]*call
}

type cached struct {
	value string
	until time.Time
}

// call is one GetSecretValue that callers wait for.
type call struct {
	done  chan struct{}
	value string
	err   error
}

var _ secret.Source = (*Secrets)(nil)

// New returns the secrets under prefix (awsconfig.EnvSecretsPrefix, such
// as "warden/prod/"), read with client and cached for ttl (DefaultTTL if
// 0). The functions need secretsmanager:GetSecretValue on the secrets
// under the prefix, and kms:Decrypt on their key if it is not the
// account's default.
func New(client API, prefix string, ttl time.Duration) (*Secrets, error) {
	switch {
	case client == nil:
		return nil, errors.New("awssecrets: no Secrets Manager client")
	case prefix == "":
		return nil, errors.New("awssecrets: no secret name prefix: every secret Warden reads is under one")
	case !validName(prefix) || len(prefix) >= MaxSecretIDBytes:
		return nil, fmt.Errorf("awssecrets: prefix %q: not a secret name prefix (letters, digits and /_+=.@-, under %d bytes)", prefix, MaxSecretIDBytes)
	case ttl < 0:
		return nil, fmt.Errorf("awssecrets: cache TTL %v is negative", ttl)
	case ttl == 0:
		ttl = DefaultTTL
	}
	return &Secrets{client: client, prefix: prefix, ttl: ttl, now: time.Now,
		cache: map[string]cached{}, inflight: map[string]*call{}}, nil
}

// validName reports whether s holds only the characters Secrets Manager
// allows in a secret name.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("/_+=.@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// SecretID is the Secrets Manager name of the secret called name.
func (s *Secrets) SecretID(name string) string { return s.prefix + name }

// Get implements secret.Source.
func (s *Secrets) Get(ctx context.Context, name string) (string, error) {
	if name == "" || !validName(name) || len(s.prefix)+len(name) > MaxSecretIDBytes {
		return "", fmt.Errorf("secret %q: not a Secrets Manager name (letters, digits and /_+=.@-, at most %d bytes with the prefix): %w",
			name, MaxSecretIDBytes, secret.ErrNotSet)
	}
	s.mu.Lock()
	if c, ok := s.cache[name]; ok && s.now().Before(c.until) {
		s.mu.Unlock()
		return c.value, nil
	}
	c, ok := s.inflight[name]
	if !ok {
		c = &call{done: make(chan struct{})}
		s.inflight[name] = c
		go s.read(context.WithoutCancel(ctx), name, c)
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.value, c.err
	case <-ctx.Done():
		return "", fmt.Errorf("secret %q: %w", name, ctx.Err())
	}
}

// read makes the call and hands its result to the waiters.
func (s *Secrets) read(ctx context.Context, name string, c *call) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c.value, c.err = s.fetch(ctx, name)
	s.mu.Lock()
	if c.err == nil {
		s.cache[name] = cached{value: c.value, until: s.now().Add(s.ttl)}
	}
	delete(s.inflight, name)
	s.mu.Unlock()
	close(c.done)
}

func (s *Secrets) fetch(ctx context.Context, name string) (string, error) {
	id := s.SecretID(name)
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		var notFound *types.ResourceNotFoundException
		if errors.As(err, &notFound) {
			return "", fmt.Errorf("secret %q: Secrets Manager has no secret %s: %w", name, id, secret.ErrNotSet)
		}
		return "", describe(name, id, err)
	}
	if out.SecretString == nil {
		if out.SecretBinary != nil {
			return "", fmt.Errorf("secret %q: %s holds binary data; Warden reads text secrets (SecretString)", name, id)
		}
		return "", fmt.Errorf("secret %q: %s has no value: %w", name, id, secret.ErrNotSet)
	}
	v := *out.SecretString
	if len(v) > secret.MaxBytes {
		return "", fmt.Errorf("secret %q: %s is %d bytes; the limit is %d", name, id, len(v), secret.MaxBytes)
	}
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("secret %q: %s is empty: %w", name, id, secret.ErrNotSet)
	}
	return v, nil
}

// describe turns a failed call into an error that says what failed and
// cannot hold the answer's body: the SDK's own error is not wrapped, since
// a response it could not decode keeps a snapshot of that body.
func describe(name, id string, err error) error {
	var (
		de *smithy.DeserializationError
		ae smithy.APIError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("secret %q: get %s from Secrets Manager: %w", name, id, context.DeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("secret %q: get %s from Secrets Manager: %w", name, id, context.Canceled)
	case errors.As(err, &de):
		return fmt.Errorf("secret %q: get %s from Secrets Manager: the answer could not be read", name, id)
	case errors.As(err, &ae):
		return fmt.Errorf("secret %q: get %s from Secrets Manager: %s: %s", name, id, ae.ErrorCode(), ae.ErrorMessage())
	}
	return fmt.Errorf("secret %q: get %s from Secrets Manager: %s", name, id, err.Error())
}
