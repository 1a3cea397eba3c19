package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server started as a child process. Its stderr goes to a file;
// its stdout lines are offered on lines until nobody reads them.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	lines   chan string
	exited  chan struct{} // closed once the process has been waited for
	waitErr error
}

// startProc starts bin with args, stderr to logPath.
func startProc(name, logPath, bin string, args ...string) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, lines: make(chan string, 256), exited: make(chan struct{})}
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

// waitLine returns the first stdout line that starts with prefix, without
// the prefix.
func (p *proc) waitLine(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line := <-p.lines:
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
				return rest, nil
			}
		case <-p.exited:
			return "", fmt.Errorf("%s exited before printing %q: %v%s", p.name, prefix, p.waitErr, p.logTail())
		case <-t.C:
			return "", fmt.Errorf("%s did not print %q within %v%s", p.name, prefix, timeout, p.logTail())
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// stop ends the process: SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s had already exited: %v", p.name, p.waitErr)
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

// logTail returns the end of the process's stderr, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n--- end of " + p.logPath + " ---\n" + string(b)
}

// memory returns the process's resident set size now and at its peak
// (VmRSS and VmHWM of /proc/PID/status), in bytes.
func (p *proc) memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
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
		return 0, 0, fmt.Errorf("read memory of %s: no VmRSS or VmHWM in /proc/%d/status", p.name, p.cmd.Process.Pid)
	}
	return rss, peak, nil
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ),
// 100 per second on every Linux configuration Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime returns the user plus system CPU time the process at
// /proc/<pid>/stat has used ("self" for this one).
func cpuTime(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time of %s: %w", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	fields := strings.Fields(string(b[i+1:]))
	if i < 0 || len(fields) < 13 {
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

func (p *proc) cpu() (time.Duration, error) {
	return cpuTime(strconv.Itoa(p.cmd.Process.Pid))
}

// buildWarden builds cmd/warden of the module the bench module replaces
// github.com/wardenhq/warden with, into dir.
func buildWarden(ctx context.Context, dir string) (string, error) {
	list := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/wardenhq/warden")
	src, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("find the warden module (run from bench/, or pass --warden): go list: %w", err)
	}
	bin := filepath.Join(dir, "warden")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/warden")
	build.Dir = strings.TrimSpace(string(src))
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build warden in %s: %w\n%s", build.Dir, err, out)
	}
	return bin, nil
}

// trivialFlag, as the first argument, makes this program the trivial
// server instead of the benchmark.
const trivialFlag = "--trivial-server"

// trivialListening starts the line the trivial server prints once it
// accepts connections.
const trivialListening = "listening on "

// trivialServer is the baseline: a plain net/http server whose hook route
// reads the request body and answers a fixed JSON reply of the size
// Warden's decision has. It runs until SIGTERM or SIGINT.
func trivialServer(args []string) error {
	fs := flagSet(trivialFlag)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	reply := fs.String("reply", `{}`, "the body of every answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := []byte(*reply)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+hookPath, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	// The same limits as `warden serve`.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 90 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("%s%s\n", trivialListening, ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
