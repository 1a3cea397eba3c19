// Package s3test runs versitygw — the Versity S3 gateway, a real S3 server
// with versioning and Object Lock — on 127.0.0.1 for the tests of Warden's
// S3 adapters, and builds aws-sdk-go-v2 S3 clients for it.
//
// The gateway is built once per machine by install-versitygw.sh (beside this
// file; cached under ${XDG_CACHE_HOME:-$HOME/.cache}/warden/versitygw/; 1.5
// to 3 minutes cold on two cores) and started per Server on a free port,
// with its buckets, versions and metadata in the test's temporary
// directory: a start takes about 50 ms.
package s3test

import (
	"github.com/wardenhq/warden/shared/installer"

	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Region is the region the server and its clients use.
const Region = "us-east-1"

// Server is a running versitygw.
type Server struct {
	// URL is the server's endpoint, http://127.0.0.1:<port>.
	URL string
	// Root is the directory that holds the buckets: the current version
	// of an object is the file Root/<bucket>/<key>. It is there for tests
	// that damage what S3 would never let them change.
	Root string

	accessKey, secretKey string
	cmd                  *exec.Cmd
	log                  string
}

var install = sync.OnceValues(runInstall)

// Binary builds versitygw if it is not cached yet (once per process) and
// returns the path of its binary.
func Binary() (string, error) {
	return install()
}

func runInstall() (string, error) {
	script, err := installer.Script("install-versitygw.sh")
	if err != nil {
		return "", err
	}
	out, err := installer.Run(script)
	if err != nil {
		return "", err
	}
	bin := installer.LastLine(out)
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("run %s: printed %q, not an executable (%v)", script, bin, err)
	}
	return bin, nil
}

// Start builds (if need be) and starts versitygw on a free port of
// 127.0.0.1 over a fresh directory, and stops it when the test ends. It
// fails the test if the server cannot be built or started; it never skips.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("s3test: build versitygw: %v", err)
	}
	var errs []error
	for range 3 { // a free port can be taken between the probe and the start
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		errs = append(errs, err)
	}
	t.Fatalf("s3test: start versitygw: %v", errors.Join(errs...))
	return nil
}

func start(t testing.TB, bin string) (*Server, error) {
	dir := t.TempDir()
	root, versions := filepath.Join(dir, "root"), filepath.Join(dir, "versions")
	for _, d := range []string{root, versions} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:       "http://" + port,
		Root:      root,
		accessKey: "WARDENTEST" + randomHex(5),
		secretKey: randomHex(20), // a throwaway credential of this server alone
		log:       filepath.Join(dir, "versitygw.log"),
	}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(bin, "--port", port, "--quiet", "posix", "--versioning-dir", versions, root)
	// Only what the gateway needs: no VGW_* setting of the caller's leaks in.
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir,
		"ROOT_ACCESS_KEY_ID=" + s.accessKey, "ROOT_SECRET_ACCESS_KEY=" + s.secretKey}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	stop := func() {
		_ = s.cmd.Process.Kill() // the process this Server started, by its handle
		<-exited
	}
	if err := s.waitReady(exited); err != nil {
		stop()
		return nil, err
	}
	t.Cleanup(stop)
	return s, nil
}

// waitReady waits until the server answers an authenticated ListBuckets.
func (s *Server) waitReady(exited <-chan error) error {
	c := s.Client()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("versitygw exited at start (%v): %s", werr, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw at %s not ready after 30 s: %v: %s", s.URL, err, s.logTail())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return hex.EncodeToString(b)
}

// Config is an aws.Config with the server's credentials and region, and
// no retries (a test sees each answer as the server gave it). Set its
// HTTPClient to watch the traffic.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region: Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s.accessKey, SecretAccessKey: s.secretKey, Source: "s3test"}, nil
		}),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: 30 * time.Second},
	}
}

// Options points an S3 client at the server (its endpoint, path-style
// addressing): s3.NewFromConfig(cfg, srv.Options).
func (s *Server) Options(o *s3.Options) {
	o.BaseEndpoint = aws.String(s.URL)
	o.UsePathStyle = true
}

// Client is an S3 client of the server.
func (s *Server) Client() *s3.Client {
	return s3.NewFromConfig(s.Config(), s.Options)
}

// Bucket creates a bucket with a fresh name, with versioning, and with
// Object Lock enabled if lock is set, and returns its name.
func (s *Server) Bucket(t testing.TB, lock bool) string {
	t.Helper()
	ctx := context.Background()
	name := "warden-test-" + randomHex(6)
	c := s.Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), ObjectLockEnabledForBucket: aws.Bool(lock)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	if !lock { // Object Lock turns versioning on by itself
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatalf("s3test: enable versioning on %s: %v", name, err)
		}
	}
	return name
}
