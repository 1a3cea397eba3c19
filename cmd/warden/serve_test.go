package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/policy/examples"
	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/server"
	"github.com/wardenhq/warden/shared/sqlite"
)

// lockedBuffer is a bytes.Buffer safe to read while serve writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// local is a warden serve running in the test process.
type local struct {
	endpoint, admin, dataDir, policyFile string
	banner                               string       // what serve printed on start
	stop                                 func() error // shuts serve down once and returns what it returned
}

func startServe(t testing.TB, opts ...func(*serveConfig)) *local {
	t.Helper()
	dir := t.TempDir()
	l := &local{dataDir: filepath.Join(dir, "data"), policyFile: filepath.Join(dir, "policy.yaml")}
	done := make(chan error, 1)
	if err := os.WriteFile(l.policyFile, examples.Policy, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	ready := make(chan string, 1)
	var out lockedBuffer
	cfg := serveConfig{addr: "127.0.0.1:0", dataDir: l.dataDir, policyFile: l.policyFile, shutdownGrace: 5 * time.Second,
		reloadInterval: 20 * time.Millisecond, firstProject: "starter"}
	for _, o := range opts {
		o(&cfg)
	}
	go func() { done <- serve(ctx, cfg, &out, io.Discard, ready) }()
	select {
	case addr := <-ready:
		l.endpoint = "http://" + addr
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	l.banner = out.String()
	l.admin = regexp.MustCompile(`WARDEN_ADMIN_TOKEN=(\S+)`).FindStringSubmatch(l.banner)[1]
	t.Cleanup(func() { l.stop() })
	return l
}

// cli runs a warden command against the server, with the admin token.
func (l *local) cli(t testing.TB, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--endpoint", l.endpoint)
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func (l *local) asAdmin(args ...string) []string { return append(args, "--token", l.admin) }

func hookInput(command string) string {
	b, _ := json.Marshal(map[string]any{"session_id": "cc-1", "hook_event_name": "PreToolUse", "tool_name": "Bash",
		"tool_input": map[string]any{"command": command}, "tool_use_id": "toolu_1", "cwd": "/workspace"})
	return string(b)
}

func TestServeEndToEnd(t *testing.T) {
	l := startServe(t)

	// The banner's command attaches an agent as printed.
	attach := regexp.MustCompile(`agent setup claude --endpoint (\S+) --enroll-key (wdn_e_starter_\S+) --agent claude-code`).FindStringSubmatch(l.banner)
	if attach == nil || attach[1] != l.endpoint {
		t.Fatalf("banner:\n%s", l.banner)
	}
	if code, _, e := l.cli(t, "", "agent", "setup", "claude", "--enroll-key", attach[2], "--agent", "claude-code", "--dry-run"); code != 0 {
		t.Errorf("the banner's command fails: %s", e)
	}

	code, out, errOut := l.cli(t, "", l.asAdmin("projects", "create", "project-a")...)
	key := regexp.MustCompile(`wdn_e_\S+`).FindString(out)
	if code != 0 || key == "" {
		t.Fatalf("projects create: %d %s %s", code, out, errOut)
	}
	code, out, errOut = l.cli(t, "", "agent", "login", "--enroll-key", key, "--agent", "claude-code", "--format", "json")
	var sess struct{ ID, Token string }
	if code != 0 || json.Unmarshal([]byte(out), &sess) != nil || sess.Token == "" {
		t.Fatalf("agent login: %d %s %s", code, out, errOut)
	}
	// A hook waits for a human's approval, but here only where the test
	// approves meanwhile.
	hookFor := func(command, approvalWait string) (int, string) {
		code, _, errOut := l.cli(t, hookInput(command), "hook", "--token", sess.Token, "--approval-wait", approvalWait)
		return code, strings.TrimSpace(errOut)
	}
	hook := func(command string) (int, string) { return hookFor(command, "0s") }

	// The example policy: feature branches go, main needs an approval. The
	// request waits on one; asked again, it joins it; approved from the
	// command line, it passes once; the next asks anew.
	if code, msg := hook("git push origin feature/x"); code != 0 {
		t.Errorf("feature push: exit %d %s", code, msg)
	}
	mainPush := "cd /workspace && git push origin main"
	code, msg := hook(mainPush)
	apr := regexp.MustCompile(`approval pending: (APR-[A-Z2-7]{16}), waiting on ops-slack \(release-managers\)`).FindStringSubmatch(msg)
	if code != 2 || apr == nil {
		t.Fatalf("main push: exit %d %s", code, msg)
	}
	if code, msg := hook(mainPush); code != 2 || !strings.Contains(msg, apr[1]) {
		t.Errorf("main push again: exit %d %s; want it to join %s", code, msg, apr[1])
	}
	if code, out, errOut := l.cli(t, "", l.asAdmin("approvals", "list")...); code != 0 || !strings.Contains(out, apr[1]) || !strings.Contains(out, "pending") {
		t.Errorf("approvals list: %d %s %s", code, out, errOut)
	}
	// The hook that asks now waits; approved meanwhile, it lets the push
	// run: it joined the pending approval, which grants it once.
	waited := make(chan string, 1)
	go func() {
		code, msg := hookFor(mainPush, "20s")
		waited <- fmt.Sprintf("exit %d %s", code, msg)
	}()
	for i := 0; ; i++ {
		var a approval.Approval
		apiCall(http.DefaultClient, "GET", l.endpoint+"/v1/admin/approvals/"+apr[1], l.admin, nil, &a)
		if a.Requests >= 3 || i == 100 {
			break // the waiting hook has joined it
		}
		time.Sleep(50 * time.Millisecond)
	}
	approved := time.Now()
	if code, out, errOut := l.cli(t, "", l.asAdmin("approvals", "approve", apr[1], "--note", "release 1.2")...); code != 0 || !strings.Contains(out, "approved by admin:admin") {
		t.Fatalf("approvals approve: %d %s %s", code, out, errOut)
	}
	if got := <-waited; got != "exit 0 " {
		t.Errorf("the waiting main push: %s; want it let through once approved", got)
	}
	t.Logf("approved to hook unblocked: %v", time.Since(approved).Round(time.Millisecond))
	if code, msg := hook(mainPush); code != 2 || !strings.Contains(msg, "approval pending") || strings.Contains(msg, apr[1]) {
		t.Errorf("main push after its one use: exit %d %s; want a new approval", code, msg)
	}

	// A secret in a command is recorded as a keyed hash, never in clear.
	hook("curl -H 'Authorization: Bearer sekret-value-123456' https://api.example.com")
	hook("curl -H 'Authorization: Bearer sekret-value-123456' https://api.example.com/again")

	// Hot reload: a stricter policy takes effect; an invalid one is refused
	// and the last good one stays.
	strict := "version: 1\nrules:\n  - {id: only-status, effect: allow, action: tool:Bash, command: \"git status\"}\n"
	writePolicy(t, l.policyFile, strict)
	waitFor(t, func() bool { c, _ := hook("git push origin feature/x"); return c == 2 })
	writePolicy(t, l.policyFile, "version: 1\nrules:\n  - {effect: allow, acton: tool:Bash}\n")
	time.Sleep(200 * time.Millisecond)
	if code, msg := hook("git status"); code != 0 {
		t.Errorf("after an invalid reload the last good policy should stay: exit %d %s", code, msg)
	}

	// Bad input is refused with 400, bad tokens with 401, and the server
	// stays healthy.
	for _, tc := range []struct {
		body, token string
		status      int
	}{
		{strings.Repeat("x", 2<<20), sess.Token, 400},
		{`{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":1}}`, sess.Token, 400},
		{`{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"ls"}`, sess.Token, 400},
		{hookInput("ls"), "wdn_s_nope_00", 401},
	} {
		req, _ := http.NewRequest("POST", l.endpoint+"/v1/hooks/pre-tool-use", strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("body %.40q: HTTP %d, want %d", tc.body, resp.StatusCode, tc.status)
		}
	}
	if resp, err := http.Get(l.endpoint + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz after bad input: %v %v", resp, err)
	}

	// Freeze and unfreeze the project; kill the session.
	if code, _, e := l.cli(t, "", l.asAdmin("projects", "freeze", "project-a", "--reason", "incident 42")...); code != 0 {
		t.Fatalf("freeze: %s", e)
	}
	if code, msg := hook("git status"); code != 2 || !strings.Contains(msg, "frozen by admin") || !strings.Contains(msg, "incident 42") {
		t.Errorf("frozen project: exit %d %s", code, msg)
	}
	l.cli(t, "", l.asAdmin("projects", "unfreeze", "project-a")...)
	if code, msg := hook("git status"); code != 0 {
		t.Errorf("unfrozen project: exit %d %s", code, msg)
	}
	if code, _, e := l.cli(t, "", l.asAdmin("sessions", "kill", sess.ID, "--reason", "runaway loop")...); code != 0 {
		t.Fatalf("kill: %s", e)
	}
	if code, msg := hook("git status"); code != 2 || !strings.Contains(msg, "was killed by admin") || !strings.Contains(msg, "runaway loop") {
		t.Errorf("killed session: exit %d %s", code, msg)
	}
	code, out, _ = l.cli(t, "", l.asAdmin("sessions", "list")...)
	if code != 0 || !regexp.MustCompile(sess.ID+`\s+project-a\s+claude-code\s+killed`).MatchString(out) {
		t.Errorf("sessions list:\n%s", out)
	}
	// Killing an agent stops its sessions; listings show it.
	_, out, _ = l.cli(t, "", "agent", "login", "--enroll-key", key, "--agent", "codex-ci", "--format", "json")
	var other struct{ ID, Token string }
	json.Unmarshal([]byte(out), &other)
	if code, _, e := l.cli(t, "", l.asAdmin("agents", "kill", "project-a/codex-ci", "--reason", "leaked logs")...); code != 0 {
		t.Fatalf("agents kill: %s", e)
	}
	if code, msg, _ := l.cli(t, hookInput("git status"), "hook", "--token", other.Token); code != 2 {
		t.Errorf("session of a killed agent: exit %d %s", code, msg)
	}
	_, out, _ = l.cli(t, "", l.asAdmin("sessions", "list")...)
	if !regexp.MustCompile(other.ID + `\s+project-a\s+codex-ci\s+agent killed\s+\S+\s+leaked logs \(admin`).MatchString(out) {
		t.Errorf("sessions list does not show the killed agent:\n%s", out)
	}
	if code, _, e := l.cli(t, "", "sessions", "list", "--token", "wdn_a_admin_00"); code != 2 || !strings.Contains(e, "needs the admin token") {
		t.Errorf("admin API without the admin token: exit %d %s", code, e)
	}

	req, _ := http.NewRequest("POST", l.endpoint+"/v1/hooks/pre-tool-use", strings.NewReader(hookInput("ls")))
	req.Header.Set("Authorization", "Bearer "+sess.Token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("killed session over HTTP: %v %v, want 403", resp, err)
	}

	code, out, _ = l.cli(t, "", l.asAdmin("audit", "tail", "-n", "100")...)
	for _, want := range []string{"server.started", "project.created", "session.login", "decision.allow", "decision.approval_required",
		"policy.loaded", "policy.rejected", "project.frozen", "project.unfrozen", "session.killed", "request.refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit tail lacks %s:\n%s", want, out)
		}
	}

	// Query, tail with filters, and replay.
	code, out, _ = l.cli(t, "", l.asAdmin("audit", "query", "--session", sess.ID, "--format", "json")...)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r audit.Record
		if json.Unmarshal([]byte(line), &r) != nil || r.Session != sess.ID {
			t.Errorf("query --session returned %q", line)
		}
		n++
	}
	if code != 0 || n < 8 {
		t.Errorf("query --session: exit %d, %d records", code, n)
	}
	code, out, _ = l.cli(t, "", l.asAdmin("audit", "query", "--decision", "denied", "--action", "tool:*")...)
	if code != 0 || !strings.Contains(out, "decision.approval_required") || strings.Contains(out, "decision.allow") {
		t.Errorf("query --decision denied:\n%s", out)
	}
	code, out, _ = l.cli(t, "", l.asAdmin("audit", "tail", "--session", sess.ID, "--denied", "-n", "2")...)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.Contains(out, "request.refused") {
		t.Errorf("tail --session --denied -n 2:\n%s", out)
	}
	code, out, _ = l.cli(t, "", l.asAdmin("audit", "replay", sess.ID)...)
	for _, want := range []string{"session " + sess.ID + "  project-a/claude-code  killed", "login", `Bash "git push origin feature/x"  allowed (shell)`,
		`needs approval (risky-shell-needs-approval)`, "kill", "by admin: runaway loop", "refused"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("replay lacks %q:\n%s", want, out)
		}
	}

	// The trail verifies, on the server and as an export; an edited export
	// does not, and verify names the record.
	if code, out, e := l.cli(t, "", l.asAdmin("audit", "verify")...); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("audit verify: exit %d %s %s", code, out, e)
	}
	code, out, _ = l.cli(t, "", l.asAdmin("audit", "export")...)
	export := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(export, []byte(out), 0o600); err != nil || code != 0 {
		t.Fatalf("audit export: %d %v", code, err)
	}
	if strings.Contains(out, "sekret-value") {
		t.Error("a bearer token reached the audit trail")
	}
	// Two calls, each recording the command as resource and in its args.
	tags := regexp.MustCompile(`Authorization: (\[REDACTED:[0-9a-f]{12}\])`).FindAllStringSubmatch(out, -1)
	if len(tags) != 4 || tags[0][1] != tags[1][1] || tags[1][1] != tags[2][1] || tags[2][1] != tags[3][1] {
		t.Errorf("the same token should get the same tag each time: %v", tags)
	}
	if code, out, e := l.cli(t, "", "audit", "verify", "--file", export); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("audit verify --file: exit %d %s %s", code, out, e)
	}
	data, _ := os.ReadFile(export)
	tampered := strings.Replace(string(data), `"resource":"git push origin feature/x"`, `"resource":"git status"`, 1)
	if tampered == string(data) {
		t.Fatal("the export has no feature push to tamper with")
	}
	os.WriteFile(export, []byte(tampered), 0o600)
	if code, _, e := l.cli(t, "", "audit", "verify", "--file", export); code != 1 || !strings.Contains(e, "BROKEN after") || !strings.Contains(e, "record hash") {
		t.Errorf("verify of a tampered export: exit %d %s", code, e)
	}

	// A verifiable export: records, signed digests and the public key.
	time.Sleep(1200 * time.Millisecond) // at least one digest (signed every second here)
	exportDir := t.TempDir()
	if code, out, e := l.cli(t, "", l.asAdmin("audit", "export", "--dir", exportDir)...); code != 0 || !strings.Contains(out, "signed digests") {
		t.Fatalf("audit export --dir: exit %d %s %s", code, out, e)
	}
	code, out, e := l.cli(t, "", "audit", "verify", "--dir", exportDir)
	if m := regexp.MustCompile(`^ok: \d+ records, chains intact, (\d+) signed digests match`).FindStringSubmatch(out); code != 0 || m == nil || m[1] == "0" {
		t.Errorf("audit verify --dir: exit %d %s %s", code, out, e)
	}
	// Truncated: the chain of what is left is intact, the digests are not.
	records, _ := os.ReadFile(filepath.Join(exportDir, "audit.jsonl"))
	lines := strings.SplitAfter(string(records), "\n")
	os.WriteFile(filepath.Join(exportDir, "audit.jsonl"), []byte(strings.Join(lines[:len(lines)/2], "")), 0o600)
	if code, _, e := l.cli(t, "", "audit", "verify", "--dir", exportDir); code != 1 || !strings.Contains(e, "contradicts a signed digest") {
		t.Errorf("verify of a truncated export: exit %d %s", code, e)
	}

	// Shutdown records the stop durably.
	if err := l.stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(l.dataDir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Audit().After(context.Background(), 0, 1000)
	if err != nil || len(recs) == 0 || recs[len(recs)-1].Code != audit.ServerStopped {
		t.Errorf("last record after shutdown: %v %v", recs[len(recs)-1], err)
	}
}

func TestServeArchive(t *testing.T) {
	t.Parallel()
	l := startServe(t, func(c *serveConfig) { c.archiveInterval, c.archiveBatch = 50*time.Millisecond, 5 })
	for i := range 12 {
		if code, _, e := l.cli(t, "", l.asAdmin("projects", "create", fmt.Sprintf("p%d", i))...); code != 0 {
			t.Fatalf("projects create: %s", e)
		}
	}
	// 14 records (server.started, project.created ×13): three batches.
	c := &http.Client{}
	waitFor(t, func() bool {
		var list server.ArchiveList
		apiCall(c, "GET", l.endpoint+"/v1/admin/audit/archive?prefix=digests/", l.admin, nil, &list)
		return len(list.Keys) >= 3
	})

	dir := filepath.Join(t.TempDir(), "archive")
	code, out, e := l.cli(t, "", l.asAdmin("audit", "export", "--archive", dir)...)
	if code != 0 || !regexp.MustCompile(`^copied [3-9] new batches \([3-9] objects\)`).MatchString(out) {
		t.Fatalf("export --archive: exit %d %s %s", code, out, e)
	}
	if code, out, e = l.cli(t, "", l.asAdmin("audit", "export", "--archive", dir)...); code != 0 || !strings.HasPrefix(out, "copied 0 new batches") {
		t.Fatalf("export --archive again: exit %d %s %s", code, out, e)
	}
	code, out, e = l.cli(t, "", "audit", "verify", "--archive", dir)
	if code != 0 || !regexp.MustCompile(`^ok: 1[4-9] records, chains intact, [3-9] signed digests match`).MatchString(out) || !strings.Contains(e, "published in the archive") {
		t.Fatalf("verify --archive: exit %d %s %s", code, out, e)
	}
	var key audit.PublicKeyInfo
	apiCall(c, "GET", l.endpoint+"/v1/audit/public-key", "", nil, &key)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	data, _ := json.Marshal(key)
	os.WriteFile(keyFile, data, 0o600)
	if code, out, e = l.cli(t, "", "audit", "verify", "--archive", dir, "--key", keyFile); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("verify --archive --key: exit %d %s %s", code, out, e)
	}
	other := audit.Publish(ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey))
	data, _ = json.Marshal(other)
	os.WriteFile(keyFile, data, 0o600)
	if code, _, e = l.cli(t, "", "audit", "verify", "--archive", dir, "--key", keyFile); code != 1 || !strings.Contains(e, "signed by key") {
		t.Fatalf("verify --archive with another key: exit %d %s", code, e)
	}

	// A changed byte in the copy is found, and named.
	objects, _ := audit.DirStore{Root: dir}.List(t.Context(), "records/")
	name := filepath.Join(dir, filepath.FromSlash(objects[1]))
	data, _ = os.ReadFile(name)
	data[len(data)-10] ^= 0xff
	os.Chmod(name, 0o600)
	os.WriteFile(name, data, 0o600)
	if code, _, e = l.cli(t, "", "audit", "verify", "--archive", dir); code != 1 || !strings.Contains(e, objects[1]) {
		t.Fatalf("verify of a changed archive: exit %d %s", code, e)
	}

	// The server's own archive verifies, in its data directory.
	if code, out, e = l.cli(t, "", "audit", "verify", "--archive", filepath.Join(l.dataDir, "archive")); code != 0 {
		t.Fatalf("verify the server's archive: exit %d %s %s", code, out, e)
	}
}

func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	l := startServe(t)
	key := enroll(t, l, "project-a")
	code, out, _ := l.cli(t, "", "agent", "login", "--enroll-key", key, "--agent", "claude-code", "--format", "json")
	var sess struct{ ID, Token string }
	if code != 0 || json.Unmarshal([]byte(out), &sess) != nil {
		t.Fatalf("agent login: %d %s", code, out)
	}
	hook := func() (int, string) {
		code, _, errOut := l.cli(t, hookInput("git status"), "hook", "--token", sess.Token)
		return code, errOut
	}
	if code, _, e := l.cli(t, "", l.asAdmin("sessions", "pause", sess.ID)...); code == 0 || !strings.Contains(e, "give a reason") {
		t.Errorf("pause without a reason: exit %d %s", code, e)
	}
	if code, out, e := l.cli(t, "", l.asAdmin("sessions", "pause", sess.ID, "--reason", "looks stuck")...); code != 0 || !strings.Contains(out, "warden sessions resume "+sess.ID) {
		t.Fatalf("pause: exit %d %s %s", code, out, e)
	}
	if code, msg := hook(); code != 2 || !strings.Contains(msg, "was paused by") || !strings.Contains(msg, "looks stuck") {
		t.Errorf("a tool call of a paused session: exit %d %s", code, msg)
	}
	if code, _, e := l.cli(t, "", l.asAdmin("sessions", "resume", sess.ID)...); code != 0 {
		t.Fatalf("resume: %s", e)
	}
	if code, msg := hook(); code != 0 {
		t.Errorf("after resume: exit %d %s", code, msg)
	}
	var paused, resumed bool
	for _, r := range auditRecords(t, l) {
		paused = paused || r.Code == audit.SessionPaused && r.Session == sess.ID && r.Reason == "looks stuck"
		resumed = resumed || r.Code == audit.SessionResumed && r.Session == sess.ID
	}
	if !paused || !resumed {
		t.Errorf("pause recorded %v, resume recorded %v", paused, resumed)
	}
}

func TestServeConfig(t *testing.T) {
	t.Parallel()
	var r retentionValue
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "0": 0} {
		if err := r.Set(in); err != nil || time.Duration(r) != want {
			t.Errorf("--retention %s: %v, %v", in, time.Duration(r), err)
		}
	}
	for _, in := range []string{"-1d", "1w", "d", "-5h", "1.5d"} {
		if err := r.Set(in); err == nil {
			t.Errorf("--retention %s accepted", in)
		}
	}
	for _, tt := range []struct {
		cfg  serveConfig
		want string
	}{
		{serveConfig{retention: retentionValue(24 * time.Hour)}, "--archive-interval 0 turns archiving off"},
		{serveConfig{retention: retentionValue(time.Minute), archiveInterval: time.Minute}, "--retention 1m0s: at least 1h"},
		{serveConfig{archiveBatch: audit.MaxBatchRecords + 1, archiveInterval: time.Minute}, "--archive-batch 100001"},
	} {
		if err := tt.cfg.check(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func writePolicy(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
