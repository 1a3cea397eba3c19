package main

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
	var cloneRSS, pushRSS int64
	timed := func(d *time.Duration, rss *int64, dir string, args ...string) {
		runtime.GC()
		stop := growth(vmRSS)
		start := time.Now()
		f.git(b, dir, args...)
		*d += time.Since(start)
		if grew := stop(); rss != nil {
			*rss = max(*rss, grew)
		}
	}
	for i := 0; b.Loop(); i++ {
		viaUpstream, viaWarden := filepath.Join(b.TempDir(), "direct"), filepath.Join(b.TempDir(), "warden")
		timed(&cloneDirect, nil, b.TempDir(), "clone", "--branch", "feature/base", directRepo, viaUpstream)
		timed(&cloneWarden, &cloneRSS, b.TempDir(), "clone", "--branch", "feature/base", "https://github.com/acme/web.git", viaWarden)
		addBig(b, f, viaUpstream, 2*i+1)
		addBig(b, f, viaWarden, 2*i+2)
		timed(&pushDirect, nil, viaUpstream, "push", "origin", fmt.Sprintf("HEAD:refs/heads/feature/direct-%d", i))
		timed(&pushWarden, &pushRSS, viaWarden, "push", "origin", fmt.Sprintf("HEAD:refs/heads/feature/warden-%d", i))
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / n }
	b.ReportMetric(ms(cloneDirect), "clone-direct-ms")
	b.ReportMetric(ms(cloneWarden), "clone-warden-ms")
	b.ReportMetric(ms(pushDirect), "push-direct-ms")
	b.ReportMetric(ms(pushWarden), "push-warden-ms")
	b.ReportMetric(float64(cloneWarden)/float64(cloneDirect), "clone-ratio")
	b.ReportMetric(float64(pushWarden)/float64(pushDirect), "push-ratio")
	// The process's resident memory grew by at most this during a clone
	// or a push through Warden (the process is Warden and the upstream's
	// front; git and http-backend run apart).
	b.ReportMetric(float64(cloneRSS)/(1<<20), "clone-warden-rss-growth-MiB")
	b.ReportMetric(float64(pushRSS)/(1<<20), "push-warden-rss-growth-MiB")
}

// vmRSS is the process's resident set size from /proc, in bytes.
func vmRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
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
