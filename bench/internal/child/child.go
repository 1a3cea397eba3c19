// Package child runs the servers a benchmark measures as child processes
// of its own, on loopback: start, wait for a line or a port, read their
// memory and CPU time, stop; and builds and drives `warden serve`.
package child

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a server started as a child process. Its stderr goes to a file;
// its stdout lines are offered on lines until nobody reads them.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	lines   chan string
	exited  chan struct{} // closed once the process has been waited for
	waitErr error
}

// Start starts bin with args and, added to this program's
// environment, env; stderr goes to logPath.
func Start(name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, logPath: logPath, lines: make(chan string, 256), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody is reading any more: drop
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		// Wait only once stdout is drained, as exec.Cmd requires.
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// PID is the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// WaitLine returns the first stdout line that starts with prefix, without
// the prefix.
func (p *Process) WaitLine(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line := <-p.lines:
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
				return rest, nil
			}
		case <-p.exited:
			return "", fmt.Errorf("%s exited before printing %q: %v%s", p.name, prefix, p.waitErr, p.LogTail())
		case <-t.C:
			return "", fmt.Errorf("%s did not print %q within %v%s", p.name, prefix, timeout, p.LogTail())
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// WaitListening waits until addr accepts TCP connections, for a server
// that prints nothing when it is ready.
func (p *Process) WaitListening(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening on %s: %v%s", p.name, addr, p.waitErr, p.LogTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s within %v: %v%s", p.name, addr, timeout, err, p.LogTail())
		}
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after grace.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s had already exited: %v%s", p.name, p.waitErr, p.LogTail())
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.exited
	return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, grace)
}

// LogTail returns the end of the process's stderr, for error messages.
func (p *Process) LogTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n--- end of " + p.logPath + " ---\n" + string(b)
}

// Memory returns the process's resident set size now and at its peak
// (VmRSS and VmHWM of /proc/PID/status), in bytes.
func (p *Process) Memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of %s: %w", p.name, err)
	}
	for line := range strings.Lines(string(b)) {
		name, value, _ := strings.Cut(line, ":")
		var dst *int64
		switch name {
		case "VmRSS":
			dst = &rss
		case "VmHWM":
			dst = &peak
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read memory of %s: %s: %w", p.name, name, err)
		}
		*dst = kb << 10
	}
	if rss == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("read memory of %s: no VmRSS or VmHWM in /proc/%d/status", p.name, p.PID())
	}
	return rss, peak, nil
}

// ResetPeak sets the process's VmHWM back to its VmRSS (Linux
// clear_refs 5), so that a later VmHWM is the peak of what follows.
func (p *Process) ResetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.PID()), []byte("5"), 0)
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ),
// 100 per second on every Linux configuration Go supports.
const clockTick = 10 * time.Millisecond

// CPUTime returns the user plus system CPU time the process at
// /proc/<pid>/stat has used ("self" for this one).
func CPUTime(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time of %s: %w", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("read CPU time of %s: unexpected /proc/%s/stat", pid, pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("read CPU time of %s: unexpected /proc/%s/stat", pid, pid)
	}
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("read CPU time of %s: %w", pid, err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// CPU is the CPU time the process has used.
func (p *Process) CPU() (time.Duration, error) {
	return CPUTime(strconv.Itoa(p.PID()))
}

// BuildWarden builds cmd/warden of the module the bench module replaces
// github.com/wardenhq/warden with, into dir. It returns the binary and
// what it was built from.
func BuildWarden(ctx context.Context, dir string) (bin, source string, err error) {
	list := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/wardenhq/warden")
	src, err := list.Output()
	if err != nil {
		return "", "", fmt.Errorf("find the warden module (run from bench/, or pass --warden): go list: %w", err)
	}
	bin = filepath.Join(dir, "warden")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/warden")
	build.Dir = strings.TrimSpace(string(src))

	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("build warden in %s: %w\n%s", build.Dir, err, out)
	}
	source = build.Dir
	if v := sourceVersion(ctx, build.Dir); v != "" {
		source += " at " + v
	}
	return bin, source, nil
}

// sourceVersion describes the commit of the git tree at dir, and whether
// tracked files differ from it, for the report: "a8af60f (with local
// changes)". It is empty if dir is not in a git tree.
func sourceVersion(ctx context.Context, dir string) string {
	rev, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(rev))
	if st, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		v += " (with local changes)"
	}
	return v
}

// FreeAddr returns a loopback address with a port free at the time of the
// call, for a server that cannot be told to pick its own (nginx).
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
