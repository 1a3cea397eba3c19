// Package gittest is the real git host's stand-in for tests of Warden's
// git remote: git http-backend (from git itself) over a directory of bare
// repositories, behind Basic authentication, and git run with a
// configuration of the test's own.
package gittest

import (
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Username and Token are the credential the upstream takes: the one Warden
// holds for it, which the agent never has.
const (
	Username = "x-access-token"
	Token    = "ghp_upstreamTokenOnlyWardenHolds0123456"
)

// Upstream serves git http-backend over a new directory of bare
// repositories, to requests with Username and Token. It returns its URL
// and the directory.
func Upstream(t testing.TB) (string, string) {
	t.Helper()
	root := t.TempDir()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"), Root: "/",
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1",
			// http-backend serves receive-pack only to an authenticated user.
			"REMOTE_USER=warden"},
		Stderr: io.Discard}
	spool := t.TempDir()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != Username || pass != Token {
			w.Header().Set("WWW-Authenticate", `Basic realm="upstream"`)
			http.Error(w, "upstream: credentials required", http.StatusUnauthorized)
			return
		}
		r.Header.Del("Authorization")
		if r.ContentLength < 0 {
			// CGI needs a length: spooled to a file here, as a web server
			// in front of http-backend would.
			f, err := os.CreateTemp(spool, "body-")
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer os.Remove(f.Name())
			defer f.Close()
			n, err := io.Copy(f, r.Body)
			if err == nil {
				_, err = f.Seek(0, io.SeekStart)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body, r.ContentLength = f, n
			r.TransferEncoding = nil
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, root
}

// Env is the environment git runs in for a test: home as its home, no
// system configuration, no prompts, and a fixed author.
func Env(home string) []string {
	return []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=agent", "GIT_AUTHOR_EMAIL=agent@example.com", "GIT_COMMITTER_NAME=agent", "GIT_COMMITTER_EMAIL=agent@example.com"}
}

// Run runs git in dir with env and returns its combined output.
func Run(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Must runs git as Run does, failing the test on an error.
func Must(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := Run(dir, env, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Seed creates the bare repository root/repo.git (repo as acme/web) with
// one commit on main, and returns its path and main's object ID.
func Seed(t testing.TB, root, repo string) (string, string) {
	t.Helper()
	env := Env(t.TempDir())
	bare := filepath.Join(root, filepath.FromSlash(repo)+".git")
	seed := t.TempDir()
	Must(t, root, env, "init", "--bare", "-b", "main", bare)
	Must(t, seed, env, "init", "-b", "main")
	if err := os.WriteFile(filepath.Join(seed, "README.md"), []byte(repo+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Must(t, seed, env, "add", ".")
	Must(t, seed, env, "commit", "-m", "first")
	Must(t, seed, env, "push", bare, "main")
	return bare, strings.TrimSpace(Must(t, bare, env, "rev-parse", "refs/heads/main"))
}
