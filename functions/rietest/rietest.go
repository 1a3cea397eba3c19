// Package rietest runs Warden's Lambda functions the way Lambda runs them:
// each bootstrap built by `make functions` (linux/arm64, provided.al2023),
// started by the Lambda Runtime Interface Emulator (aws-lambda-rie) — under
// qemu-aarch64-static on a machine that is not arm64 — and invoked through
// the emulator's HTTP API, all on 127.0.0.1.
//
// The pieces are:
//   - Install builds the pinned emulator and installs QEMU once per machine,
//     through install-rie.sh beside this file.
//   - Build runs `make functions` into a directory.
//   - Start runs one bootstrap under the emulator with exactly the
//     environment it is given (the emulator hands its own environment to the
//     function, as Lambda hands the function's configuration), and
//     Function.Invoke invokes it.
//   - SecretsManager is a stand-in for AWS Secrets Manager, which no emulator
//     here provides.
//
// The emulator initializes the function at the first invocation, as Lambda
// does on a cold start; Function.InitDuration reads how long that took from
// the emulator's INIT REPORT.
package rietest

import (
	"github.com/wardenhq/warden/shared/installer"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tools are the programs a bootstrap runs under.
type Tools struct {
	// RIE is the aws-lambda-rie binary.
	RIE string
	// QEMU is qemu-aarch64-static, or "" on an arm64 machine, which runs
	// the bootstraps itself.
	QEMU string
}

var install = sync.OnceValues(runInstall)

// Install installs the emulator and QEMU if they are not there yet (once
// per process; install-rie.sh caches them per machine) and returns them.
func Install() (Tools, error) {
	return install()
}

func runInstall() (Tools, error) {
	script, err := installer.Script("install-rie.sh")
	if err != nil {
		return Tools{}, err
	}
	out, err := installer.Run(script)
	if err != nil {
		return Tools{}, err
	}
	var t Tools
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "rie":
			t.RIE = v
		case "qemu":
			t.QEMU = v
		}
	}
	if !installer.Executable(t.RIE) || (runtime.GOARCH != "arm64" && !installer.Executable(t.QEMU)) {
		return Tools{}, fmt.Errorf("run %s: printed %q: want an executable aws-lambda-rie and, on %s, qemu-aarch64-static",
			script, out, runtime.GOARCH)
	}
	if runtime.GOARCH == "arm64" {
		t.QEMU = ""
	}
	return t, nil
}

// packageDir is this package's directory in the source tree.
func packageDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("rietest: no caller information") // only without debug information, which tests always have
	}
	return filepath.Dir(file)
}

// ModuleRoot is the directory of Warden's go.mod and Makefile.
func ModuleRoot() string { return filepath.Join(packageDir(), "..", "..") }

// goCommand is the go command: on PATH, or that of GOROOT.

// Build runs `make functions` with its output in dir and returns the
// bootstrap of each function by name. goarch "arm64" is exactly what
// `make functions` builds and deploys; any other is the same recipe with
// the go command run as `env GOARCH=<goarch> go`, for a native build to
// compare with.
func Build(dir, goarch string) (map[string]string, error) {
	goCmd, err := installer.GoCommand()
	if err != nil {
		return nil, err
	}
	if goarch != "arm64" {
		goCmd = "env GOARCH=" + goarch + " " + goCmd
	}
	cmd := exec.Command("make", "-s", "-C", ModuleRoot(), "functions", "FUNCTIONS_DIR="+dir, "GO="+goCmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("make functions (GOARCH=%s): %w\n%s", goarch, err, out)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*", "bootstrap"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("make functions left no bootstrap in %s (%v)", dir, err)
	}
	out := map[string]string{}
	for _, p := range paths {
		out[filepath.Base(filepath.Dir(p))] = p
	}
	return out, nil
}

// Function is a bootstrap running under the emulator.
type Function struct {
	// URL is the emulator's invoke API, http://127.0.0.1:<port>.
	URL string

	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// Start starts bootstrap under the emulator, with the emulator's two
// listeners on free ports of 127.0.0.1, its working directory the
// bootstrap's (Lambda's /var/task), and env as the whole environment of
// the emulator and so of the function. The emulator and the function
// stop when the test ends. It fails the test if the emulator does not
// start; the function itself starts at the first invocation.
func Start(t testing.TB, tools Tools, bootstrap string, env []string) *Function {
	t.Helper()
	var errs []error
	for range 3 { // a free port can be taken between the probe and the start
		f, err := start(t, tools, bootstrap, env)
		if err == nil {
			return f
		}
		errs = append(errs, err)
	}
	t.Fatalf("rietest: start aws-lambda-rie: %v", errors.Join(errs...))
	return nil
}

func start(t testing.TB, tools Tools, bootstrap string, env []string) (*Function, error) {
	invokeAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	runtimeAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--runtime-interface-emulator-address", invokeAddr, "--runtime-api-address", runtimeAddr}
	if tools.QEMU != "" {
		args = append(args, tools.QEMU)
	}
	args = append(args, bootstrap)
	f := &Function{URL: "http://" + invokeAddr, out: &syncBuffer{}, exited: make(chan struct{})}
	f.cmd = exec.Command(tools.RIE, args...)
	f.cmd.Dir = filepath.Dir(bootstrap)
	f.cmd.Env = slices.Clone(env)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	f.cmd.SysProcAttr = sysProcAttr()
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", tools.RIE, err)
	}
	go func() {
		_ = f.cmd.Wait()
		close(f.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-f.exited:
			return nil, fmt.Errorf("aws-lambda-rie exited at start: %s", f.Output())
		default:
		}
		if time.Now().After(deadline) {
			f.stop()
			return nil, fmt.Errorf("aws-lambda-rie not listening on %s after 10 s: %s", invokeAddr, f.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(f.stop)
	return f, nil
}

// stop ends the emulator and the function it started (its process group).
func (f *Function) stop() {
	killGroup(f.cmd.Process)
	<-f.exited
}

// Invoke invokes the function with event, as Lambda's Invoke API does,
// and returns the emulator's status and the function's answer as the
// emulator gives it (a streamed answer whole: the emulator buffers it).
func (f *Function) Invoke(ctx context.Context, event []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+"/2015-03-31/functions/function/invocations", bytes.NewReader(event))
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("invoke: %w; emulator output:\n%s", err, f.Output())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// Output is what the emulator and the function printed so far: the
// emulator's log, and the function's stdout and stderr.
func (f *Function) Output() string { return f.out.String() }

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// InitDuration is the duration of the function's initialization that the
// emulator reported in its INIT REPORT: from starting the bootstrap until
// the bootstrap asked for its first invocation (or failed). Under QEMU it
// includes the emulation's cost. (The "Init Duration" of the emulator's
// REPORT line is not it: it times only the start of the asynchronous
// init, about 0.02 ms.)
func (f *Function) InitDuration() (time.Duration, error) {
	m := initReport.FindStringSubmatch(f.Output())
	if m == nil {
		return 0, errors.New("no INIT REPORT in the emulator's output")
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("INIT REPORT %q: %w", m[0], err)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// syncBuffer is a bytes.Buffer that the emulator's two output streams
// write to while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// SecretsManager is a stand-in for AWS Secrets Manager on 127.0.0.1, since
// no emulator of it runs here. It answers GetSecretValue in the service's
// JSON 1.1 protocol (POST /, the operation in X-Amz-Target) for requests
// signed with SigV4 by AccessKey for the service in Region, with the
// service's error for a secret it does not hold. It does not recompute the
// signature (shared/awssecrets' tests do; the S3 emulator checks the same
// credentials' signatures on every S3 request). A request outside that
// protocol fails the test.
type SecretsManager struct {
	URL string

	t                 testing.TB
	accessKey, region string
	secrets           map[string]string
	mu                sync.Mutex
	asked             []string
}

// NewSecretsManager starts a stand-in holding secrets (full secret IDs ->
// values) that lives as long as the test.
func NewSecretsManager(t testing.TB, accessKey, region string, secrets map[string]string) *SecretsManager {
	s := &SecretsManager{t: t, accessKey: accessKey, region: region, secrets: secrets}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Asked is the secret IDs asked for, in order.
func (s *SecretsManager) Asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

func (s *SecretsManager) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.t.Errorf("secrets manager stand-in: read the request: %v", err)
		return
	}
	scope := "AWS4-HMAC-SHA256 Credential=" + s.accessKey + "/"
	service := "/" + s.region + "/secretsmanager/aws4_request, SignedHeaders="
	auth := r.Header.Get("Authorization")
	var in struct{ SecretId string }
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		s.t.Errorf("secrets manager stand-in: %s %s, want POST /", r.Method, r.URL)
	case r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue":
		s.t.Errorf("secrets manager stand-in: X-Amz-Target %q, want secretsmanager.GetSecretValue", r.Header.Get("X-Amz-Target"))
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		s.t.Errorf("secrets manager stand-in: Content-Type %q", r.Header.Get("Content-Type"))
	case !strings.HasPrefix(auth, scope) || !strings.Contains(auth, service):
		s.t.Errorf("secrets manager stand-in: the request is not signed by %s for secretsmanager in %s", s.accessKey, s.region)
	case json.Unmarshal(body, &in) != nil || in.SecretId == "":
		s.t.Errorf("secrets manager stand-in: body %q, want {\"SecretId\": ...}", body)
	default:
		s.answer(w, in.SecretId)
		return
	}
	w.WriteHeader(http.StatusBadRequest)
}

func (s *SecretsManager) answer(w http.ResponseWriter, id string) {
	s.mu.Lock()
	s.asked = append(s.asked, id)
	value, ok := s.secrets[id]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": "ResourceNotFoundException",
			"message": "Secrets Manager can't find the specified secret."})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"ARN": "arn:aws:secretsmanager:" + s.region + ":123456789012:secret:" + id + "-AbCdEf",
		"Name": id, "SecretString": value, "VersionId": "v1", "VersionStages": []string{"AWSCURRENT"}, "CreatedDate": 1.7645e9})
}
