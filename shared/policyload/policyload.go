// Package policyload keeps the policy in force: it fetches the policy from
// where it is kept — a file for the local server, an object of a versioned
// S3 bucket for the Lambdas (s3store.ObjectFetcher) — revalidates it, and
// swaps in a new version only when it is valid. An invalid new version is
// refused and the last good one stays; both facts are logged and audited.
//
// The compiled policy lives in the Source: a Lambda builds its Source once,
// at cold start, and keeps it across invocations, revalidating it with
// RefreshIfStale, which costs an unchanged policy no more than a stat of
// the file or a conditional GET that S3 answers 304 Not Modified.
package policyload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
)

// Revision is one fetched version of the policy.
type Revision struct {
	// Data is the policy's bytes: at most the limit passed to Fetch plus
	// one, so that a larger policy is seen, and refused, as one.
	Data []byte
	// Name names the policy in error messages and audit records: the
	// file's path, or s3://bucket/key.
	Name string
	// VersionID identifies the version where the store keeps versions (the
	// S3 object version ID); "" for a file.
	VersionID string
}

// ErrUnchanged is returned by a Fetcher whose policy cannot have changed
// since the last Revision it returned.
var ErrUnchanged = errors.New("policy unchanged")

// Fetcher reads the policy from where it is kept. A Source calls it from
// one goroutine at a time.
type Fetcher interface {
	// Fetch returns the policy as it is now, reading at most limit+1 of
	// its bytes, or ErrUnchanged when it cannot have changed since the
	// last Revision Fetch returned (the file's size and modification time
	// are the same, or S3 answered 304 to a GET conditional on the last
	// ETag). A failed Fetch leaves the fetcher as it was, so that the
	// next one fetches again.
	Fetch(ctx context.Context, limit int64) (Revision, error)
	// Name is where the policy is kept, for logs: a path or s3://bucket/key.
	Name() string
}

// Source holds the current policy. It is safe for concurrent use.
type Source struct {
	cur   atomic.Pointer[policy.Policy]
	fetch Fetcher // nil for a static source
	sink  audit.Sink
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex // serializes fetches; guards the fields below
	data    []byte     // the bytes of the current or last refused version
	checked time.Time  // when the policy was last fetched or revalidated
	failing bool       // the last fetch failed (Watch logs a failure once)
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
	return New(ctx, File(path), sink, log)
}

// New loads the policy that f fetches. It fails if the policy cannot be
// fetched or is invalid: a server does not start without a policy. Loads
// and refusals are audited to sink and logged to log.
func New(ctx context.Context, f Fetcher, sink audit.Sink, log *slog.Logger) (*Source, error) {
	switch {
	case f == nil:
		return nil, errors.New("load policy: no source to fetch it from")
	case sink == nil:
		return nil, fmt.Errorf("load policy %s: no audit sink: loads and refusals of the policy are audited", f.Name())
	case log == nil:
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{fetch: f, sink: sink, log: log, now: time.Now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	if s.Current() == nil {
		return nil, fmt.Errorf("load policy %s: the source reported it unchanged before it was ever read", f.Name())
	}
	return s, nil
}

// Current returns the policy in force.
func (s *Source) Current() *policy.Policy { return s.cur.Load() }

// Channels returns the notification channels of the policy in force;
// false when none is loaded.
func (s *Source) Channels() (map[string]policy.ChannelDecl, bool) { return s.Current().Channels() }

// Path is the watched file, or "" for a static source or one that is not a
// file.
func (s *Source) Path() string {
	if f, ok := s.fetch.(*fileFetcher); ok {
		return f.path
	}
	return ""
}

// Name is where the policy is kept: a file's path or s3://bucket/key; ""
// for a static source.
func (s *Source) Name() string {
	if s.fetch == nil {
		return ""
	}
	return s.fetch.Name()
}

// Watch revalidates the policy every interval until ctx ends, swapping in
// a new valid version. A fetch that fails is logged once, until one
// succeeds again; the last good policy stays in force meanwhile.
func (s *Source) Watch(ctx context.Context, interval time.Duration) {
	if s.fetch == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.refresh(ctx, true)
			s.mu.Unlock()
		}
	}
}

// Refresh revalidates the policy now and swaps in a new version if it is
// valid. It returns why a new version was refused, or why the policy could
// not be fetched; either way the last good policy stays in force.
func (s *Source) Refresh(ctx context.Context) error {
	if s.fetch == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh(ctx, false)
}

// RefreshIfStale is Refresh, done only if the policy was last fetched or
// revalidated maxAge ago or more: what a Lambda calls at the start of each
// invocation, so that a new version is in force within maxAge of its
// upload without a fetch per request. Callers that arrive while a refresh
// runs wait for it and do not fetch again. A failed fetch counts as a
// check: it is tried again after maxAge, not on every invocation while S3
// is unreachable.
func (s *Source) RefreshIfStale(ctx context.Context, maxAge time.Duration) error {
	if s.fetch == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if age := s.now().Sub(s.checked); age >= 0 && age < maxAge {
		return nil
	}
	return s.refresh(ctx, false)
}

// refresh reloads, logging a failed fetch (once, if quiet is set: Watch
// polls and would repeat it every interval). s.mu is held.
func (s *Source) refresh(ctx context.Context, quiet bool) error {
	err := s.reload(ctx)
	var fetchErr *fetchError
	switch {
	case err == nil:
		if s.failing {
			s.log.Info("policy source reachable again", "source", s.fetch.Name())
		}
		s.failing = false
	case errors.As(err, &fetchErr):
		if !quiet || !s.failing {
			s.log.Error("policy fetch failed; keeping the last good version", "source", s.fetch.Name(), "err", err)
		}
		s.failing = true
	default:
		s.failing = false
		s.log.Error("policy reload refused; keeping the last good version", "source", s.fetch.Name(), "err", err)
	}
	return err
}

// fetchError is a failure to fetch the policy, as opposed to a refusal of
// what was fetched.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// reload fetches the policy and swaps in a valid, changed version. s.mu is
// held.
func (s *Source) reload(ctx context.Context) error {
	rev, err := s.fetch.Fetch(ctx, policy.MaxFileBytes)
	s.checked = s.now()
	if errors.Is(err, ErrUnchanged) {
		return nil
	}
	if err != nil {
		return &fetchError{fmt.Errorf("read policy %s: %w", s.fetch.Name(), err)}
	}
	if bytes.Equal(rev.Data, s.data) {
		return nil
	}
	s.data = rev.Data
	resource := rev.Name
	if rev.VersionID != "" {
		resource += "?versionId=" + rev.VersionID
	}
	p, err := policy.Load(rev.Name, rev.Data)
	if err != nil {
		s.record(ctx, audit.PolicyRejected, resource, "", firstLines(err.Error(), 5))
		return err
	}
	s.cur.Store(p)
	attrs := []any{"source", rev.Name, "version", p.Version[:12], "rules", p.RuleCount()}
	if rev.VersionID != "" {
		attrs = append(attrs, "version_id", rev.VersionID)
	}
	s.log.Info("policy loaded", attrs...)
	s.record(ctx, audit.PolicyLoaded, resource, p.Version, fmt.Sprintf("%d rules", p.RuleCount()))
	return nil
}

func (s *Source) record(ctx context.Context, code audit.Code, resource, version, reason string) {
	rec := audit.Record{ID: audit.NewID(), Time: s.now().UTC(), Code: code, Resource: resource, PolicyVersion: version, Reason: reason}
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

// File returns a Fetcher of the policy file at path. It reads the file when
// its size or modification time differs from the last read's.
func File(path string) Fetcher { return &fileFetcher{path: path} }

type fileFetcher struct {
	path  string
	stamp fileStamp // of the last read
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func (f *fileFetcher) Name() string { return f.path }

func (f *fileFetcher) Fetch(_ context.Context, limit int64) (Revision, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return Revision{}, err
	}
	st := fileStamp{fi.ModTime(), fi.Size()}
	if st == f.stamp {
		return Revision{}, ErrUnchanged
	}
	file, err := os.Open(f.path)
	if err != nil {
		return Revision{}, err
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return Revision{}, err
	}
	f.stamp = st
	return Revision{Data: data, Name: f.path}, nil
}
