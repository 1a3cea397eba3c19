package policyload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
)

func TestOpenRefusesInvalidPolicy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(path, []byte("version: 1\nrulez: []\n"), 0o600)
	sink := &audit.MemorySink{}
	if _, err := Open(context.Background(), path, sink, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil ||
		!strings.Contains(err.Error(), `unknown field "rulez"`) {
		t.Fatalf("Open = %v", err)
	}
	if recs := sink.Records(); len(recs) != 1 || recs[0].Code != audit.PolicyRejected {
		t.Errorf("records: %+v", recs)
	}
	if _, err := Open(context.Background(), path+".missing", sink, slog.Default()); err == nil {
		t.Error("Open of a missing file succeeded")
	}
}

func TestWatchSwapsOnlyValidVersions(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "p.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write("version: 1\nrules:\n  - {id: one, effect: allow, action: git:push}\n")
	sink := &audit.MemorySink{}
	src, err := Open(context.Background(), path, sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first := src.Current()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Watch(ctx, 10*time.Millisecond)

	write("version: 1\nrules:\n  - {id: one, effect: allow, action: git:push}\n  - {id: two, effect: deny, action: git:fetch}\n")
	deadline := time.Now().Add(5 * time.Second)
	for src.Current() == first {
		if time.Now().After(deadline) {
			t.Fatal("the new policy was not loaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := src.Current()
	if second.RuleCount() != 2 {
		t.Fatalf("loaded %d rules", second.RuleCount())
	}
	write("version: 1\nrules: [{effect: nope}]\n")
	for len(sink.Records()) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the invalid policy was not seen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if src.Current() != second {
		t.Error("an invalid version replaced the last good one")
	}
	codes := []audit.Code{}
	for _, r := range sink.Records() {
		codes = append(codes, r.Code)
	}
	if len(codes) != 3 || codes[0] != audit.PolicyLoaded || codes[1] != audit.PolicyLoaded || codes[2] != audit.PolicyRejected {
		t.Errorf("audit codes %v", codes)
	}
}

// fetcher is a Fetcher whose answers a test sets.
type fetcher struct {
	mu    sync.Mutex
	rev   Revision
	err   error
	calls int
	gate  chan struct{} // if set, Fetch waits for it
}

func (f *fetcher) Name() string { return "s3://bucket/policy.yaml" }

func (f *fetcher) Fetch(ctx context.Context, limit int64) (Revision, error) {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if limit != policy.MaxFileBytes {
		return Revision{}, fmt.Errorf("limit %d", limit)
	}
	return f.rev, f.err
}

func (f *fetcher) set(rev Revision, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev, f.err = rev, err
}

func (f *fetcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

const (
	policyV1 = "version: 1\nrules:\n  - {id: one, effect: allow, action: git:push}\n"
	policyV2 = "version: 1\nrules:\n  - {id: one, effect: allow, action: git:push}\n  - {id: two, effect: deny, action: git:fetch}\n"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestRevisionsAreAuditedWithTheirVersion swaps valid revisions and
// refuses an invalid one, naming each object version in its record.
func TestRevisionsAreAuditedWithTheirVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := &fetcher{rev: Revision{Data: []byte(policyV1), Name: "s3://bucket/policy.yaml", VersionID: "v1"}}
	sink := &audit.MemorySink{}
	src, err := New(ctx, f, sink, quiet())
	if err != nil {
		t.Fatal(err)
	}
	f.set(Revision{Data: []byte(policyV2), Name: "s3://bucket/policy.yaml", VersionID: "v2"}, nil)
	if err := src.Refresh(ctx); err != nil || src.Current().RuleCount() != 2 {
		t.Fatalf("Refresh to v2: %v, %d rules", err, src.Current().RuleCount())
	}
	v2 := src.Current()
	f.set(Revision{Data: []byte("version: 1\nrules: [{effect: nope}]\n"), Name: "s3://bucket/policy.yaml", VersionID: "v3"}, nil)
	if err := src.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "s3://bucket/policy.yaml:2:") {
		t.Fatalf("Refresh to an invalid v3: %v", err)
	}
	if src.Current() != v2 {
		t.Fatal("the invalid v3 replaced v2")
	}
	if err := src.Refresh(ctx); err != nil { // the same bytes again: refused once, not every time
		t.Fatalf("Refresh to the same invalid bytes: %v", err)
	}
	f.set(Revision{}, ErrUnchanged)
	if err := src.Refresh(ctx); err != nil || src.Current() != v2 {
		t.Fatalf("Refresh of an unchanged policy: %v", err)
	}
	var got []string
	for _, r := range sink.Records() {
		got = append(got, fmt.Sprintf("%s %s %.12s", r.Code, r.Resource, r.PolicyVersion))
	}
	want := []string{
		"policy.loaded s3://bucket/policy.yaml?versionId=v1 " + versionOf(t, policyV1),
		"policy.loaded s3://bucket/policy.yaml?versionId=v2 " + versionOf(t, policyV2),
		"policy.rejected s3://bucket/policy.yaml?versionId=v3 ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f.count() != 5 {
		t.Fatalf("%d fetches, want 5", f.count())
	}
}

func versionOf(t *testing.T, src string) string {
	t.Helper()
	p, err := policy.Load("x", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p.Version[:12]
}

// TestRefreshIfStale revalidates only a policy older than the age given,
// and once for callers that arrive together.
func TestRefreshIfStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := &fetcher{rev: Revision{Data: []byte(policyV1), Name: "s3://bucket/policy.yaml"}}
	src, err := New(ctx, f, &audit.MemorySink{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var mu sync.Mutex
	now := start
	src.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src.checked = start
	at := func(d time.Duration) { mu.Lock(); now = start.Add(d); mu.Unlock() }
	f.set(Revision{}, ErrUnchanged)

	for _, step := range []struct {
		at    time.Duration
		calls int
	}{{0, 1}, {4 * time.Second, 1}, {5 * time.Second, 2}, {9 * time.Second, 2}, {10 * time.Second, 3}, {-time.Minute, 4}} {
		at(step.at)
		if err := src.RefreshIfStale(ctx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if f.count() != step.calls {
			t.Fatalf("at %v: %d fetches, want %d", step.at, f.count(), step.calls)
		}
	}

	// Callers that find it stale together fetch once.
	at(time.Hour)
	f.gate = make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := src.RefreshIfStale(ctx, 5*time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(f.gate)
	wg.Wait()
	if f.count() != 5 {
		t.Fatalf("8 callers at once: %d fetches in all, want 5", f.count())
	}

	// A failed fetch keeps the policy, says why, and waits for the next
	// period too.
	at(2 * time.Hour)
	f.set(Revision{}, errors.New("connection refused"))
	if err := src.RefreshIfStale(ctx, 5*time.Second); err == nil || err.Error() != "read policy s3://bucket/policy.yaml: connection refused" {
		t.Fatalf("RefreshIfStale with S3 down: %v", err)
	}
	if err := src.RefreshIfStale(ctx, 5*time.Second); err != nil || src.Current() == nil || f.count() != 6 {
		t.Fatalf("right after a failure: %v, %d fetches", err, f.count())
	}
}

func TestNewFailsWithoutAPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sink := &audit.MemorySink{}
	for _, tt := range []struct {
		name string
		f    *fetcher
		want string
	}{
		{"fetch fails", &fetcher{err: errors.New("access denied")}, "read policy s3://bucket/policy.yaml: access denied"},
		{"never read", &fetcher{err: ErrUnchanged}, "load policy s3://bucket/policy.yaml: the source reported it unchanged before it was ever read"},
	} {
		if _, err := New(ctx, tt.f, sink, nil); err == nil || err.Error() != tt.want {
			t.Errorf("%s: New = %v, want %q", tt.name, err, tt.want)
		}
	}
	if n := len(sink.Records()); n != 0 {
		t.Errorf("%d records for policies never read", n)
	}
	f := &fetcher{rev: Revision{Data: []byte(policyV1), Name: "s3://bucket/policy.yaml"}}
	if _, err := New(ctx, f, nil, nil); err == nil || err.Error() != "load policy s3://bucket/policy.yaml: no audit sink: loads and refusals of the policy are audited" {
		t.Errorf("New without a sink = %v", err)
	}
	if _, err := New(ctx, nil, sink, nil); err == nil || err.Error() != "load policy: no source to fetch it from" {
		t.Errorf("New without a fetcher = %v", err)
	}
}

// syncBuffer is a goroutine-safe log destination.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWatchLogsAnOutageOnce polls a source that fails many times: the
// failure is logged once, and so is its end.
func TestWatchLogsAnOutageOnce(t *testing.T) {
	t.Parallel()
	f := &fetcher{rev: Revision{Data: []byte(policyV1), Name: "s3://bucket/policy.yaml"}}
	var logs syncBuffer
	src, err := New(context.Background(), f, &audit.MemorySink{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first := src.Current()
	f.set(Revision{}, errors.New("connection refused"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Watch(ctx, time.Millisecond)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("ten failed fetches", func() bool { return f.count() >= 11 })
	f.set(Revision{}, ErrUnchanged)
	waitFor("the source back", func() bool { return strings.Contains(logs.String(), "policy source reachable again") })
	if n := strings.Count(logs.String(), "policy fetch failed"); n != 1 {
		t.Fatalf("the outage was logged %d times:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `err="read policy s3://bucket/policy.yaml: connection refused"`) {
		t.Fatalf("the log does not say why:\n%s", logs.String())
	}
	if src.Current() != first {
		t.Fatal("the policy changed during the outage")
	}
}
