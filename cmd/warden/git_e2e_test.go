package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/gitproxy/gittest"
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

// gitRun runs git in dir with a fresh configuration that knows only
// Warden's credential helper, and returns its combined output.
func gitRun(t testing.TB, dir, home string, args ...string) (string, error) {
	t.Helper()
	return gittest.Run(dir, append(gittest.Env(home), runAsCLIEnv+"=1"), args...)
}

// gitFixture is an upstream (git http-backend) with acme/web, one commit
// on main; warden serve proxying github.com to it; and an agent's git
// home set up by warden agent setup.
type gitFixture struct {
	l          *local
	bare, home string
	mainBefore string
	// upstream is the upstream's URL, for going direct.
	upstream string
}

// git runs git as the agent, failing the test on an error.
func (f *gitFixture) git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := gitRun(t, dir, f.home, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func newGitFixture(t testing.TB) *gitFixture {
	t.Helper()
	upstreamURL, root := gittest.Upstream(t)
	f := &gitFixture{home: t.TempDir(), upstream: upstreamURL}
	f.bare, f.mainBefore = gittest.Seed(t, root, "acme/web")

	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	gitConfig := filepath.Join(dir, "git.yaml")
	os.WriteFile(policyFile, []byte(gitPolicy), 0o600)
	os.WriteFile(gitConfig, []byte("upstreams:\n  github.com: {url: "+upstreamURL+", username: "+gittest.Username+", password_env: GITHUB_TOKEN}\n"), 0o600)
	f.l = startServe(t, func(c *serveConfig) {
		c.policyFile, c.gitConfig = policyFile, gitConfig
		c.getenv = func(name string) string { return map[string]string{"GITHUB_TOKEN": gittest.Token}[name] }
	})
	// agent setup points git at Warden: https://github.com/ is rewritten
	// to Warden's git remote, and Warden's credential helper answers.
	code, out, errOut := f.l.cli(t, "", "agent", "setup", "claude", "--enroll-key", enroll(t, f.l, "web"), "--agent", "claude-code",
		"--path", filepath.Join(f.home, "settings.json"), "--llm-gateway=false", "--gitconfig", filepath.Join(f.home, ".gitconfig"), "--warden", selfBinary(t))
	if code != 0 || !strings.Contains(out, "git's remotes on github.com go through Warden") {
		t.Fatalf("agent setup: %d %s %s", code, out, errOut)
	}
	return f
}

// TestGitPushThroughWarden: real git, set up by warden agent setup,
// clones https://github.com/acme/web.git and pushes through Warden's git
// remote, which proxies to git http-backend with Warden's own credential:
// a feature branch lands upstream; a push to main is refused with the rule
// git prints, and main is unchanged upstream; deleting main is refused; a
// push an approve rule covers waits, and passes once approved; the trail
// holds each ref's decision and each push's outcome.
func TestGitPushThroughWarden(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	l, bare, home, mainBefore := f.l, f.bare, f.home, f.mainBefore
	mustGit := func(dir string, args ...string) string { t.Helper(); return f.git(t, dir, args...) }
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
	var firstPush *audit.Record
	for _, r := range auditRecords(t, l) {
		switch {
		case r.Kind == "git" && r.Action == "git:fetch":
			// The ref advertisement and upload-pack's requests (two with
			// protocol version 2: ls-refs, then fetch).
			fetches++
		case r.Code == audit.GitPush && firstPush == nil:
			firstPush = &r
			fallthrough
		case r.Kind == "git":
			got = append(got, string(r.Code)+" "+r.Action+" "+strings.TrimPrefix(r.Resource, "github.com/acme/web")+" "+r.Rule+r.Status)
		}
	}
	if fetches < 2 {
		t.Errorf("%d fetch decisions, want the advertisement's and upload-pack's", fetches)
	}
	// A push's outcome holds its ref updates, the upstream's status and
	// the bytes sent.
	var outcome struct {
		Refs           []map[string]string `json:"refs"`
		UpstreamStatus int                 `json:"upstream_status"`
		Bytes          int64               `json:"bytes"`
	}
	if firstPush == nil {
		t.Fatal("no git.push record")
	}
	if json.Unmarshal(firstPush.Args, &outcome) != nil || len(outcome.Refs) != 1 ||
		outcome.Refs[0]["ref"] != "refs/heads/feature/x" || outcome.Refs[0]["old"] != gitZero || outcome.Refs[0]["op"] != "create" ||
		len(outcome.Refs[0]["new"]) != 40 || outcome.UpstreamStatus != http.StatusOK || outcome.Bytes == 0 {
		t.Errorf("the first push's outcome: %+v (args %s)", outcome, firstPush.Args)
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

// TestGitRemoteRefusesBadInput: malformed pkt-lines are refused (400) and
// recorded; a truncated pack of an allowed push reaches the upstream,
// whose receive-pack refuses it, and no ref moves; no token asks git for
// credentials; a path or a protocol that is not smart HTTP is refused.
func TestGitRemoteRefusesBadInput(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	key := regexp.MustCompile(`"WARDEN_TOKEN": "([^"]+)"`).FindStringSubmatch(readFile(t, filepath.Join(f.home, "settings.json")))
	if key == nil {
		t.Fatal("no token in the settings")
	}
	post := func(path, body string, token string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", f.l.endpoint+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
		if token != "" {
			req.SetBasicAuth("warden", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(data)
	}
	const receive = "/git/github.com/acme/web.git/git-receive-pack"
	for name, body := range map[string]string{
		"garbage":          "this is not a pkt-line",
		"truncated header": "00",
		"bad command":      "0032not an old id and a new id and a ref\n0000",
		"no flush":         fmt.Sprintf("%04x%s %s refs/heads/feature/y\x00report-status\n", 4+40+1+40+1+20+15, strings.Repeat("1", 40), strings.Repeat("2", 40)),
	} {
		if code, _, msg := post(receive, body, key[1]); code != http.StatusBadRequest || !strings.Contains(msg, "malformed") {
			t.Errorf("%s: %d %s", name, code, msg)
		}
	}
	// An allowed push whose pack is cut short: the upstream refuses it.
	cmd := fmt.Sprintf("%s %s refs/heads/feature/y\x00report-status\n", gitZero, strings.Repeat("3", 40))
	code, _, msg := post(receive, fmt.Sprintf("%04x%s0000PACK\x00\x00\x00\x02\x00\x00\x00\x05trunc", len(cmd)+4, cmd), key[1])
	if code != http.StatusOK || !strings.Contains(msg, "unpack") || strings.Contains(msg, "unpack ok") {
		t.Errorf("truncated pack: %d %q, want the upstream's unpack error", code, msg)
	}
	if out, err := gitRun(t, f.bare, f.home, "rev-parse", "--verify", "refs/heads/feature/y"); err == nil {
		t.Errorf("feature/y exists upstream after a truncated pack: %s", out)
	}
	if code, h, _ := post(receive, "0000", ""); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %v", code, h)
	}
	if code, _, _ := post(receive, "0000", "wdn_s_nope_00"); code != http.StatusUnauthorized {
		t.Errorf("a bad token: %d", code)
	}
	for _, path := range []string{"/git/github.com/acme/we%20b.git/git-receive-pack", "/git/github.com/acme/web.git/objects/info/packs",
		"/git/gitlab.com/acme/web.git/git-receive-pack"} {
		if code, _, msg := post(path, "0000", key[1]); code != http.StatusNotFound {
			t.Errorf("%s: %d %s", path, code, msg)
		}
	}
	resp, err := http.Get(f.l.endpoint + "/git/github.com/acme/web.git/info/refs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the dumb protocol: %d", resp.StatusCode)
	}
	refused := 0
	for _, r := range auditRecords(t, f.l) {
		if r.Code == audit.RequestRefused && r.Action == "git:push" && strings.Contains(r.Reason, "malformed") {
			refused++
		}
	}
	if refused != 4 {
		t.Errorf("%d malformed pushes recorded, want 4", refused)
	}
}

// gitZero is git's "no object" ID.
const gitZero = "0000000000000000000000000000000000000000"

// TestGitLargePush: a push of 50 MB (one incompressible file) goes through
// Warden's git remote to the upstream, streamed: the proxy's heap grows by
// far less than the pack.
func TestGitLargePush(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	work := filepath.Join(t.TempDir(), "web")
	f.git(t, t.TempDir(), "clone", "https://github.com/acme/web.git", work)
	data := make([]byte, 50<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	if err := os.WriteFile(filepath.Join(work, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f.git(t, work, "add", "big.bin")
	f.git(t, work, "commit", "-m", "big")
	runtime.GC()
	stop := growth(heapInuse)
	f.git(t, work, "push", "origin", "HEAD:refs/heads/feature/big")
	grew := stop()
	if got := strings.TrimSpace(f.git(t, f.bare, "rev-parse", "refs/heads/feature/big")); got != strings.TrimSpace(f.git(t, work, "rev-parse", "HEAD")) {
		t.Fatalf("feature/big upstream is %s", got)
	}
	t.Logf("50 MB push: the process's heap grew by at most %d KiB", grew>>10)
	if grew > 16<<20 {
		t.Errorf("the heap grew by %d MiB during a 50 MB push: the pack is held, not streamed", grew>>20)
	}
}

// growth samples value every 5 ms until the returned func is called,
// which returns how far it rose above where it started.
func growth(value func() int64) func() int64 {
	base := value()
	top := base
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				top = max(top, value())
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return top - base
	}
}

// heapInuse is the bytes of the heap in use.
func heapInuse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// TestGitPushClientGone: an agent whose connection drops mid-pack leaves
// nothing upstream — the upstream sees a cut request and no ref moves —
// the push's outcome is recorded as an error, and the proxy's goroutines
// return to where they were. (Not parallel: it counts goroutines.)
func TestGitPushClientGone(t *testing.T) {
	f := newGitFixture(t)
	key := regexp.MustCompile(`"WARDEN_TOKEN": "([^"]+)"`).FindStringSubmatch(readFile(t, filepath.Join(f.home, "settings.json")))
	if key == nil {
		t.Fatal("no token in the settings")
	}
	u, err := url.Parse(f.l.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()

	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	cmd := fmt.Sprintf("%s %s refs/heads/feature/gone\x00report-status side-band-64k\n", gitZero, strings.Repeat("4", 40))
	body := fmt.Sprintf("%04x%s0000PACK\x00\x00\x00\x02\x00\x00\x00\x09", len(cmd)+4, cmd) + strings.Repeat("x", 64<<10)
	req := "POST /git/github.com/acme/web.git/git-receive-pack HTTP/1.1\r\nHost: " + u.Host +
		"\r\nContent-Type: application/x-git-receive-pack-request\r\nTransfer-Encoding: chunked\r\n" +
		"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("warden:"+key[1])) + "\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n", len(body), body)
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the proxy decides and starts forwarding
	conn.Close()                       // and the agent is gone, mid-pack

	deadline := time.Now().Add(10 * time.Second)
	var outcome *audit.Record
	for outcome == nil && time.Now().Before(deadline) {
		for _, r := range auditRecords(t, f.l) {
			if r.Code == audit.GitPush {
				outcome = &r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if outcome == nil || outcome.Status != "error" {
		t.Fatalf("the push's outcome: %+v", outcome)
	}
	if out, err := gitRun(t, f.bare, f.home, "rev-parse", "--verify", "refs/heads/feature/gone"); err == nil {
		t.Errorf("feature/gone exists upstream: %s", out)
	}
	for time.Now().Before(deadline) && runtime.NumGoroutine() > before {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines, %d before the push", n, before)
	}
}
