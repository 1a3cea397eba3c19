// Package installer runs the install scripts that tests need (the real
// agent clients from npm, the S3 emulator, the Lambda runtime emulator):
// each sits next to the package that uses it, installs once per machine
// into a cache, and prints what it installed on its standard output.
package installer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Script returns the path of the script name in the source directory of
// the caller (tests of other packages run in their own directories, so a
// relative path would not do).
func Script(name string) (string, error) {
	_, file, _, ok := runtime.Caller(1)
	if !ok {
		return "", fmt.Errorf("locate %s: no caller information", name)
	}
	script := filepath.Join(filepath.Dir(file), name)
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("locate %s: %w", name, err)
	}
	return script, nil
}

// Run runs script with bash, with GO set to a go command when the
// environment names none, and returns its standard output; a failure
// carries the script's standard error.
func Run(script string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if goCmd, err := GoCommand(); err == nil && os.Getenv("GO") == "" {
		cmd.Env = append(os.Environ(), "GO="+goCmd)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("run %s: %w\n%s", script, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// LastLine is the last non-empty line of out.
func LastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// GoCommand finds the go command: on PATH, in $GOROOT/bin, or where the
// official archive installs it.
func GoCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		return filepath.Join(goroot, "bin", "go"), nil
	}
	if p := "/usr/local/go/bin/go"; Executable(p) {
		return p, nil
	}
	return "", errors.New("no go command on PATH, in $GOROOT/bin or /usr/local/go/bin")
}

// Executable reports whether path is a regular file someone may run.
func Executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
