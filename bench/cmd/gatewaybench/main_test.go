package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be re-executed as the stand-in and the
// reverse proxy, as the program is.
func TestMain(m *testing.M) {
	if ok, err := runServer(os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, "gatewaybench server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunTiny runs the whole benchmark at a tiny scale: every process,
// every kind of run, the audit trail read back, the report written. nginx
// takes part if it is installed; it is never installed by the test.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts warden")
	}
	cfg := defaultConfig()
	cfg.installNginx = false
	cfg.rate, cfg.duration, cfg.warmup, cfg.pause = 100, 200*time.Millisecond, 0, 20*time.Millisecond
	cfg.ttfbRate, cfg.ttfbDuration, cfg.ttfbDeltas, cfg.ttfbDelay = 50, 200*time.Millisecond, 2, time.Millisecond
	cfg.spacing, cfg.spacingCount = 20*time.Millisecond, 2
	cfg.streams, cfg.streamLife, cfg.streamRamp = 20, 300*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	if err := run(ctx, cfg, &out, &progress); err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	report := out.String()
	for _, want := range []string{
		"### Non-streamed calls: 100 calls/s for 200ms against each target",
		"| direct to the stand-in | 20 | 0 |",
		"| **warden** (auth, policy, budget, durable audit) | 20 | 0 |",
		"| httputil.ReverseProxy (bare) | 20 | 0 |",
		"### Streamed calls: time to first byte",
		"### 20 concurrent streams through warden",
		"| 20 | 20 | 0 | 20 |",
		"| non-streamed, 100/s: no errors | 0 errors, 0 unsent, 0 answers not the stand-in's of 20 | yes |",
		"| gatewaybench-streams | 20 | 20 | 20 | 20 |",
		"| every call through warden decided and its usage recorded | 53 calls answered; 53 allow decisions; 53 llm.usage records with the stand-in's exact tokens | yes |",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if t.Failed() || strings.Contains(report, "MISMATCH") {
		t.Logf("report:\n%s\nprogress:\n%s", report, progress.String())
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		edit func(*config)
		want string
	}{
		{"defaults", func(*config) {}, ""},
		{"no rate", func(c *config) { c.rate = 0 }, "--rate 0, --ttfb-rate 200: want positive rates"},
		{"tiny body", func(c *config) { c.bodyBytes = 10 }, "--body-bytes 10: want 200 to 1048576"},
		{"too many streams", func(c *config) { c.streams = 50_000 }, "--streams 50000: want 0 to 20000"},
		{"ramp longer than life", func(c *config) { c.streamRamp = time.Minute }, "--stream-life 15s, --stream-ramp 1m0s: want a life of 100ms to 10m and a ramp no longer"},
		{"no streams, any life", func(c *config) { c.streams, c.streamLife = 0, 0 }, ""},
	} {
		c := defaultConfig()
		tt.edit(&c)
		got := ""
		if err := c.check(); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: check() = %q, want %q", tt.name, got, tt.want)
		}
	}
}
