package rietest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/installer"
)

// TestSmallFunctionsLinkNoPolicyEngine keeps the functions that need no
// policy small (the archiver 9.0 MB, slack 8.3 MB, approvals 7.9 MB,
// against 19.7 MB for api and llm): they must not import, even
// indirectly, a package that brings in the policy engine (CEL, protobuf),
// whose package initialization alone is about 10 MB of a binary; the
// archiver and approvals not slack-go either.
func TestSmallFunctionsLinkNoPolicyEngine(t *testing.T) {
	t.Parallel()
	goCmd, err := installer.GoCommand()
	if err != nil {
		t.Fatal(err)
	}
	for function, forbidden := range map[string][]string{
		"archiver":  {"cel.dev/", "github.com/slack-go/"},
		"slack":     {"cel.dev/"},
		"approvals": {"cel.dev/", "github.com/slack-go/"},
	} {
		cmd := exec.Command(goCmd, "list", "-deps", "github.com/wardenhq/warden/functions/"+function)
		cmd.Env = append(cmd.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", function, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			bad := dep == "github.com/wardenhq/warden/policy"
			for _, prefix := range forbidden {
				bad = bad || strings.HasPrefix(dep, prefix)
			}
			if bad {
				t.Errorf("the %s function links %s", function, dep)
			}
		}
	}
}
