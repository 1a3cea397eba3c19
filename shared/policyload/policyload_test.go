package policyload

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
