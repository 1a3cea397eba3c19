package awstest

import (
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden/shared/installer"
)

var cli = sync.OnceValues(func() (string, error) {
	script, err := installer.Script("install-awscli.sh")
	if err != nil {
		return "", err
	}
	out, err := installer.Run(script)
	if err != nil {
		return "", err
	}
	bin := strings.TrimPrefix(installer.LastLine(out), "aws=")
	if !installer.Executable(bin) {
		return "", &installError{out}
	}
	return bin, nil
})

type installError struct{ out string }

func (e *installError) Error() string { return "install-awscli.sh printed no aws binary: " + e.out }

// CLI returns the path of Debian's AWS CLI (the package awscli), installed
// once per machine by install-awscli.sh.
func CLI(t testing.TB) string {
	t.Helper()
	bin, err := cli()
	if err != nil {
		t.Fatalf("install the AWS CLI: %v", err)
	}
	return bin
}
