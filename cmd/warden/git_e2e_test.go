package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const gitPolicy = `version: 1
rules:
  - {id: fetch-acme, effect: allow, action: git:fetch, resource: "github.com/acme/*"}
  - {id: feature-branches, effect: allow, action: git:push, resource: "github.com/acme/web:refs/heads/feature/*"}
  - {id: no-main-push, effect: deny, action: git:push, resource: "*:refs/heads/main"}
  - {id: never-delete-main, effect: deny, action: git:delete-ref, resource: "*:refs/heads/main"}
  - {id: release-needs-approval, effect: approve, action: git:push, resource: "github.com/acme/web:refs/heads/release/*"}
approvers:
  release-managers: {slack: [U012AB3CD], rules: [release-needs-approval], timeout: 1h}
`

// upstreamToken is the credential Warden holds for the upstream; the agent
// never has it.
const upstreamToken = "ghp_upstreamTokenOnlyWardenHolds0123456"

// gitUpstream is the real host's stand-in: git http-backend (from git
// itself) over a directory of bare repositories, behind Basic
// authentication with upstreamToken. It returns its URL and the
// directory.
func gitUpstream(t *testing.T) (string, string) {
	t.Helper()
	root := t.TempDir()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"), Root: "/",
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "x-access-token" || pass != upstreamToken {
			w.Header().Set("WWW-Authenticate", `Basic realm="upstream"`)
			http.Error(w, "upstream: credentials required", http.StatusUnauthorized)
			return
		}
		r.Header.Del("Authorization")
		if r.ContentLength < 0 {
			// CGI needs a length: buffered here, as a web server in front
			// of http-backend would.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			r.TransferEncoding = nil
		}
		// http-backend serves receive-pack only to an authenticated user.
		backend.Env = append(backend.Env[:2:2], "REMOTE_USER=warden")
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, root
}

// gitRun runs git in dir with a fresh configuration that knows only
// Warden's credential helper, and returns its combined output.
func gitRun(t *testing.T, dir, home string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=agent", "GIT_AUTHOR_EMAIL=agent@example.com", "GIT_COMMITTER_NAME=agent", "GIT_COMMITTER_EMAIL=agent@example.com",
		runAsCLIEnv + "=1"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestGitPushThroughWarden: real git, set up by warden agent setup,
// clones https://github.com/acme/web.git and pushes through Warden's git
// remote, which proxies to git http-backend with Warden's own credential: a feature branch lands upstream; a push to main is refused
// with the rule git prints, and main is unchanged upstream; deleting main
// is refused; the trail holds each ref's decision and each push's outcome.
func TestGitPushThroughWarden(t *testing.T) {
	t.Parallel()
	upstreamURL, root := gitUpstream(t)
	bare := filepath.Join(root, "acme", "web.git")
	home := t.TempDir()
	mustGit := func(dir string, args ...string) string {
		t.Helper()
		out, err := gitRun(t, dir, home, args...)
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// The upstream repository, with one commit on main.
	seed := t.TempDir()
	mustGit(root, "init", "--bare", "-b", "main", bare)
	mustGit(seed, "init", "-b", "main")
	os.WriteFile(filepath.Join(seed, "README.md"), []byte("web\n"), 0o644)
	mustGit(seed, "add", ".")
	mustGit(seed, "commit", "-m", "first")
	mustGit(seed, "push", bare, "main")
	mainBefore := strings.TrimSpace(mustGit(bare, "rev-parse", "refs/heads/main"))

	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	gitConfig := filepath.Join(dir, "git.yaml")
	os.WriteFile(policyFile, []byte(gitPolicy), 0o600)
	os.WriteFile(gitConfig, []byte("upstreams:\n  github.com: {url: "+upstreamURL+", username: x-access-token, password_env: GITHUB_TOKEN}\n"), 0o600)
	l := startServe(t, func(c *serveConfig) {
		c.policyFile, c.gitConfig = policyFile, gitConfig
		c.getenv = func(name string) string { return map[string]string{"GITHUB_TOKEN": upstreamToken}[name] }
	})
	// agent setup points git at Warden: https://github.com/ is rewritten
	// to Warden's git remote, and Warden's credential helper answers.
	code, out, errOut := l.cli(t, "", "agent", "setup", "claude", "--enroll-key", enroll(t, l, "web"), "--agent", "claude-code",
		"--path", filepath.Join(home, "settings.json"), "--llm-gateway=false", "--gitconfig", filepath.Join(home, ".gitconfig"), "--warden", selfBinary(t))
	if code != 0 || !strings.Contains(out, "git's remotes on github.com go through Warden") {
		t.Fatalf("agent setup: %d %s %s", code, out, errOut)
	}
	work := filepath.Join(t.TempDir(), "web")
	mustGit(t.TempDir(), "clone", "https://github.com/acme/web.git", work)
	os.WriteFile(filepath.Join(work, "feature.txt"), []byte("new\n"), 0o644)
	mustGit(work, "add", ".")
	mustGit(work, "commit", "-m", "feature")
	mustGit(work, "push", "origin", "HEAD:refs/heads/feature/x")
	if got := strings.TrimSpace(mustGit(bare, "rev-parse", "refs/heads/feature/x")); got != strings.TrimSpace(mustGit(work, "rev-parse", "HEAD")) {
		t.Errorf("feature/x upstream is %s", got)
	}

	out, err := gitRun(t, work, home, "push", "origin", "HEAD:refs/heads/main")
	if err == nil || !strings.Contains(out, "remote: warden: push to refs/heads/main refused by rule no-main-push") ||
		!strings.Contains(out, "[remote rejected] HEAD -> main") {
		t.Errorf("push to main: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(mustGit(bare, "rev-parse", "refs/heads/main")); got != mainBefore {
		t.Errorf("main moved upstream: %s", got)
	}
	out, err = gitRun(t, work, home, "push", "origin", ":refs/heads/main")
	if err == nil || !strings.Contains(out, "remote: warden: push to refs/heads/main refused by rule never-delete-main") {
		t.Errorf("deleting main: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(mustGit(bare, "rev-parse", "refs/heads/main")); got != mainBefore {
		t.Errorf("main changed upstream: %s", got)
	}

	// A push an approve rule covers waits for a human: git prints the
	// approval's ID; approved, the same push (the same old and new IDs)
	// goes through.
	out, err = gitRun(t, work, home, "push", "origin", "HEAD:refs/heads/release/1")
	id := regexp.MustCompile(`remote: warden: push to refs/heads/release/1 waits for approval (APR-[A-Z2-7]{16})`).FindStringSubmatch(out)
	if err == nil || id == nil {
		t.Fatalf("push to release/1: %v\n%s", err, out)
	}
	if _, err := gitRun(t, bare, home, "rev-parse", "--verify", "refs/heads/release/1"); err == nil {
		t.Fatal("release/1 exists upstream before the approval")
	}
	if code, _, errOut := l.cli(t, "", l.asAdmin("approvals", "approve", id[1])...); code != 0 {
		t.Fatalf("approvals approve: %s", errOut)
	}
	mustGit(work, "push", "origin", "HEAD:refs/heads/release/1")
	if got := strings.TrimSpace(mustGit(bare, "rev-parse", "refs/heads/release/1")); got != strings.TrimSpace(mustGit(work, "rev-parse", "HEAD")) {
		t.Errorf("release/1 upstream is %s", got)
	}

	var got []string
	fetches := 0
	for _, r := range auditRecords(t, l) {
		switch {
		case r.Kind == "git" && r.Action == "git:fetch":
			// The ref advertisement and upload-pack's requests (two with
			// protocol version 2: ls-refs, then fetch).
			fetches++
		case r.Kind == "git":
			got = append(got, string(r.Code)+" "+r.Action+" "+strings.TrimPrefix(r.Resource, "github.com/acme/web")+" "+r.Rule+r.Status)
		}
	}
	if fetches < 2 {
		t.Errorf("%d fetch decisions, want the advertisement's and upload-pack's", fetches)
	}
	want := []string{
		"decision.allow git:push :refs/heads/feature/x feature-branches",
		"git.push git:push  forwarded",
		"decision.deny git:push :refs/heads/main no-main-push",
		"git.push git:push  refused",
		"decision.deny git:delete-ref :refs/heads/main never-delete-main",
		"git.push git:push  refused",
		"approval.requested git:push :refs/heads/release/1 release-needs-approval",
		"decision.approval_required git:push :refs/heads/release/1 release-needs-approval",
		"git.push git:push  refused",
		"approval.approved git:push :refs/heads/release/1 release-needs-approval",
		"decision.allow git:push :refs/heads/release/1 release-needs-approval",
		"git.push git:push  forwarded",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
