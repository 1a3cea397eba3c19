package rietest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/installer"
)

// TestArchiverLinksNoPolicyEngine keeps the archiver small (9.0 MB against
// 19.7 MB for api and llm): it must not import, even indirectly, a package
// that brings in the policy engine (CEL, protobuf) or slack-go, whose
// package initialization alone is about 15 MB of a binary.
func TestArchiverLinksNoPolicyEngine(t *testing.T) {
	t.Parallel()
	goCmd, err := installer.GoCommand()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goCmd, "list", "-deps", "github.com/wardenhq/warden/functions/archiver")
	cmd.Env = append(cmd.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/wardenhq/warden/policy" || strings.HasPrefix(dep, "cel.dev/") || strings.HasPrefix(dep, "github.com/slack-go/") {
			t.Errorf("the archiver links %s", dep)
		}
	}
}
