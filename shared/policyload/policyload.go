// Package policyload keeps the policy in force: it loads a policy file,
// watches it, and swaps in a new version only when it is valid. An invalid
// new version is refused and the last good one stays; both facts are logged
// and audited.
package policyload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
)

// Source holds the current policy. It is safe for concurrent use.
type Source struct {
	cur   atomic.Pointer[policy.Policy]
	path  string
	data  []byte // the bytes of the current or last refused version
	sink  audit.Sink
	log   *slog.Logger
	now   func() time.Time
	stamp fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// Static returns a source that always serves p.
func Static(p *policy.Policy) *Source {
	s := &Source{}
	s.cur.Store(p)
	return s
}

// Open loads the policy file at path. It fails if the file cannot be read
// or is invalid: a server does not start without a policy.
func Open(ctx context.Context, path string, sink audit.Sink, log *slog.Logger) (*Source, error) {
	s := &Source{path: path, sink: sink, log: log, now: time.Now}
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Current returns the policy in force.
func (s *Source) Current() *policy.Policy { return s.cur.Load() }

// Path is the watched file, or "" for a static source.
func (s *Source) Path() string { return s.path }

// Watch polls the file every interval until ctx ends, reloading on change.
func (s *Source) Watch(ctx context.Context, interval time.Duration) {
	if s.path == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st, err := stat(s.path)
			if err != nil || st == s.stamp {
				continue
			}
			if err := s.reload(ctx); err != nil {
				s.log.Error("policy reload refused; keeping the last good version", "path", s.path, "err", err)
			}
		}
	}
}

func stat(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// reload reads and compiles the file; it swaps only a valid, changed policy.
func (s *Source) reload(ctx context.Context) error {
	st, err := stat(s.path)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	s.stamp = st
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, policy.MaxFileBytes+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("read policy %s: %w", s.path, err)
	}
	if bytes.Equal(data, s.data) {
		return nil
	}
	s.data = data
	p, err := policy.Load(s.path, data)
	if err != nil {
		s.record(ctx, audit.PolicyRejected, "", firstLines(err.Error(), 5))
		return err
	}
	s.cur.Store(p)
	s.log.Info("policy loaded", "path", s.path, "version", p.Version[:12], "rules", p.RuleCount())
	s.record(ctx, audit.PolicyLoaded, p.Version, fmt.Sprintf("%d rules", p.RuleCount()))
	return nil
}

func (s *Source) record(ctx context.Context, code audit.Code, version, reason string) {
	rec := audit.Record{ID: audit.NewID(), Time: s.now().UTC(), Code: code, Resource: s.path, PolicyVersion: version, Reason: reason}
	if _, err := s.sink.Append(ctx, rec); err != nil {
		s.log.Error("audit append failed", "code", code, "err", err)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}
