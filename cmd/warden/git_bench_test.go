package main

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/gitproxy/gittest"
)

// BenchmarkGitThroughWarden clones a repository holding 50 MB and pushes a
// new 50 MB commit, each once straight to the upstream (git http-backend,
// with its credential) and once through Warden's git remote, in the same
// iteration, and reports the time of each (clone-direct-ms,
// clone-warden-ms, push-direct-ms, push-warden-ms) and Warden's over the
// direct (clone-ratio, push-ratio; the aim is at most 1.2). Run it with a
// fixed count: -bench GitThroughWarden -benchtime 3x.
func BenchmarkGitThroughWarden(b *testing.B) {
	f := newGitFixture(b)
	direct, err := url.Parse(f.upstream)
	if err != nil {
		b.Fatal(err)
	}
	direct.User = url.UserPassword(gittest.Username, gittest.Token)
	directRepo := direct.String() + "/acme/web.git"

	// The repository: 50 MB on main, pushed straight to the upstream.
	seed := filepath.Join(b.TempDir(), "seed")
	f.git(b, b.TempDir(), "clone", directRepo, seed)
	addBig(b, f, seed, 0)
	f.git(b, seed, "push", "origin", "HEAD:refs/heads/feature/base")

	var cloneDirect, cloneWarden, pushDirect, pushWarden time.Duration
	timed := func(d *time.Duration, dir string, args ...string) {
		start := time.Now()
		f.git(b, dir, args...)
		*d += time.Since(start)
	}
	for i := 0; b.Loop(); i++ {
		viaUpstream, viaWarden := filepath.Join(b.TempDir(), "direct"), filepath.Join(b.TempDir(), "warden")
		timed(&cloneDirect, b.TempDir(), "clone", "--branch", "feature/base", directRepo, viaUpstream)
		timed(&cloneWarden, b.TempDir(), "clone", "--branch", "feature/base", "https://github.com/acme/web.git", viaWarden)
		addBig(b, f, viaUpstream, 2*i+1)
		addBig(b, f, viaWarden, 2*i+2)
		timed(&pushDirect, viaUpstream, "push", "origin", fmt.Sprintf("HEAD:refs/heads/feature/direct-%d", i))
		timed(&pushWarden, viaWarden, "push", "origin", fmt.Sprintf("HEAD:refs/heads/feature/warden-%d", i))
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / n }
	b.ReportMetric(ms(cloneDirect), "clone-direct-ms")
	b.ReportMetric(ms(cloneWarden), "clone-warden-ms")
	b.ReportMetric(ms(pushDirect), "push-direct-ms")
	b.ReportMetric(ms(pushWarden), "push-warden-ms")
	b.ReportMetric(float64(cloneWarden)/float64(cloneDirect), "clone-ratio")
	b.ReportMetric(float64(pushWarden)/float64(pushDirect), "push-ratio")
}

// addBig commits 50 MB of incompressible data (seeded by seed) in dir.
func addBig(b *testing.B, f *gitFixture, dir string, seed int) {
	b.Helper()
	data := make([]byte, 50<<20)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7}).Read(data)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	f.git(b, dir, "add", "big.bin")
	f.git(b, dir, "commit", "-q", "-m", "big")
}
