package main

import (
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/hooks"
	"github.com/wardenhq/warden/shared/server"
	"github.com/wardenhq/warden/shared/sqlite"
)

// serveProc is a `warden serve` running as a child process (this test
// binary, acting as the warden command), so that a test can SIGKILL it.
type serveProc struct {
	cmd         *exec.Cmd
	endpoint    string
	out, errOut *lockedBuffer
	exited      chan struct{} // closed once the process has exited
}

// startServeProc starts `warden serve` on dataDir, on a free port of
// 127.0.0.1, and waits until it answers /healthz. The process is killed
// at the end of the test if it is still running.
func startServeProc(t *testing.T, dataDir string, args ...string) *serveProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The port is free when chosen, not necessarily when serve binds it:
	// another process may take it in between, so try a few.
	var lastErr string
	for range 3 {
		p := &serveProc{out: &lockedBuffer{}, errOut: &lockedBuffer{}, exited: make(chan struct{})}
		addr := freeLocalAddr(t)
		p.endpoint = "http://" + addr
		p.cmd = exec.Command(self, append([]string{"serve", "--addr", addr, "--data", dataDir, "--shutdown-grace", "5s"}, args...)...)
		p.cmd.Env = append(os.Environ(), runAsCLIEnv+"=1")
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start warden serve: %v", err)
		}
		go func() {
			_ = p.cmd.Wait()
			close(p.exited)
		}()
		t.Cleanup(func() {
			p.kill(t)
			if t.Failed() {
				t.Logf("warden serve on %s, stderr (last 4 KiB):\n%s", addr, tail(p.errOut.String(), 4<<10))
			}
		})
		if p.waitHealthy(10 * time.Second) {
			return p
		}
		p.kill(t)
		lastErr = p.errOut.String()
		if !strings.Contains(lastErr, "address already in use") {
			break
		}
	}
	t.Fatalf("warden serve did not start:\n%s", lastErr)
	return nil
}

// waitHealthy polls /healthz until it answers 200, the process exits or
// the time is up.
func (p *serveProc) waitHealthy(within time.Duration) bool {
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return false
		default:
		}
		if resp, err := c.Get(p.endpoint + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// kill SIGKILLs the process, if it still runs, and waits for it to exit.
func (p *serveProc) kill(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("warden serve (pid %d) did not exit after SIGKILL", p.cmd.Process.Pid)
	}
}

// stop asks the process to shut down (SIGTERM) and waits for it.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM warden serve: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("warden serve did not stop within 15s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("warden serve exited %d after SIGTERM", code)
	}
}

// banner waits for the banner's line matching re and returns its first
// submatch.
func (p *serveProc) banner(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v in the banner:\n%s", re, p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freeLocalAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// apiCall sends a JSON request with a bearer token and decodes the JSON
// answer into out (if not nil). It returns the HTTP status.
func apiCall(c *http.Client, method, target, token string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d, body %.200q: %w", method, target, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, nil
}

// agentLogin logs an agent in with an enrollment key and returns its
// session token.
func agentLogin(t *testing.T, c *http.Client, endpoint, enrollKey, agent string) string {
	t.Helper()
	var sess server.SessionView
	status, err := apiCall(c, "POST", endpoint+"/v1/agent/login", "", server.LoginRequest{EnrollKey: enrollKey, Agent: agent}, &sess)
	if err != nil || status != http.StatusCreated || sess.Token == "" {
		t.Fatalf("agent login: HTTP %d, %v", status, err)
	}
	return sess.Token
}

// preToolUse sends a Bash PreToolUse hook call and returns the status and
// the answer.
func preToolUse(c *http.Client, endpoint, token, toolUseID, command string) (int, hooks.Output, error) {
	in := map[string]any{"session_id": "crash-session", "hook_event_name": "PreToolUse", "tool_name": "Bash",
		"tool_input": map[string]any{"command": command}, "tool_use_id": toolUseID, "cwd": "/w"}
	var out hooks.Output
	status, err := apiCall(c, "POST", endpoint+"/v1/hooks/pre-tool-use", token, in, &out)
	return status, out, err
}

// decided reports whether a PreToolUse answer is a decision the client
// acts on: 200 with allow or deny.
func decided(status int, out hooks.Output) bool {
	return status == http.StatusOK && out.HookSpecificOutput != nil &&
		(out.HookSpecificOutput.PermissionDecision == "allow" || out.HookSpecificOutput.PermissionDecision == "deny")
}

// verifyOnServer runs GET /v1/admin/audit/verify and fails unless the
// trail verifies.
func verifyOnServer(t *testing.T, c *http.Client, endpoint, admin string) audit.Report {
	t.Helper()
	var rep audit.Report
	status, err := apiCall(c, "GET", endpoint+"/v1/admin/audit/verify", admin, nil, &rep)
	if err != nil || status != http.StatusOK || !rep.OK {
		t.Fatalf("audit verify: HTTP %d, %+v, %v", status, rep, err)
	}
	return rep
}

// readTrail reads the whole trail and the digests from the database file
// of a stopped server.
func readTrail(t *testing.T, path string) ([]audit.Record, []audit.Digest) {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var recs []audit.Record
	for {
		var last int64
		if len(recs) > 0 {
			last = recs[len(recs)-1].Seq
		}
		page, err := db.Audit().After(ctx, last, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		recs = append(recs, page...)
	}
	digests, err := db.Audit().Digests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return recs, digests
}

// crashCommands are the commands of the load, decided variously by the
// built-in policy; each decision is answered 200.
var crashCommands = []string{"git status", "git push origin main", "curl https://example.com", "ls -la"}

// crashCommand is call i's command, made unique by a comment: the same
// command thousands of times a minute would trip the policy's watchdog.
func crashCommand(i int, id string) string {
	return crashCommands[i%len(crashCommands)] + " # " + id
}

// TestCrashUnderLoad SIGKILLs `warden serve` while hook calls are in
// flight, restarts it on the same data, and checks the write-ahead
// promise: every decision a client was answered is in the trail exactly
// once, the trail (hash chains and signed digests) verifies, and the
// restarted server continues it.
func TestCrashUnderLoad(t *testing.T) {
	const (
		workers     = 16
		maxRequests = 20000
		loadFor     = 1500 * time.Millisecond
		maxLoad     = 5 * time.Second
	)
	dataDir := filepath.Join(t.TempDir(), "data")
	// Digests every second, so that some are signed before the crash.
	first := startServeProc(t, dataDir, "--digest-interval", "1s")
	admin := first.banner(t, regexp.MustCompile(`WARDEN_ADMIN_TOKEN=(\S+)`))
	enrollKey := first.banner(t, regexp.MustCompile(`--enroll-key (wdn_e_project-a_\S+)`))
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer c.CloseIdleConnections()
	token := agentLogin(t, c, first.endpoint, enrollKey, "crash")

	// The load: each worker sends calls one after another, each with its
	// own tool_use_id, until the server is gone or a bound is reached.
	var (
		sent    atomic.Int64
		killed  atomic.Bool
		stop    = make(chan struct{})
		acked   = make([][]string, workers) // answered with a decision
		unacked = make([][]string, workers) // sent, but no answer came
		late    = make([]int, workers)      // of those, sent once the kill was under way (at most one a worker)
		wg      sync.WaitGroup
	)
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := 0; time.Since(start) < maxLoad && sent.Add(1) <= maxRequests; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("toolu_crash_%02d_%05d", w, i)
				afterKill := killed.Load()
				status, out, err := preToolUse(c, first.endpoint, token, id, crashCommand(i, id))
				if decided(status, out) {
					acked[w] = append(acked[w], id)
					continue
				}
				unacked[w] = append(unacked[w], id)
				if afterKill {
					late[w]++
				}
				if !killed.Load() {
					t.Errorf("hook call %s before the crash: HTTP %d %+v %v", id, status, out, err)
				}
				return // the server is gone
			}
		})
	}
	for time.Since(start) < loadFor && sent.Load() < maxRequests/2 {
		time.Sleep(10 * time.Millisecond)
	}
	killed.Store(true)
	first.kill(t)
	close(stop)
	wg.Wait()
	loadTime := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	if ws, ok := first.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("warden serve ended with %v, not by SIGKILL", first.cmd.ProcessState)
	}
	ackedIDs, unackedIDs, lateCalls := map[string]bool{}, map[string]bool{}, 0
	for w := range workers {
		lateCalls += late[w]
		for _, id := range acked[w] {
			ackedIDs[id] = true
		}
		for _, id := range unacked[w] {
			unackedIDs[id] = true
		}
	}
	if len(ackedIDs) == 0 || len(unackedIDs) == 0 {
		t.Fatalf("%d calls answered and %d in flight at the kill: the crash did not happen under load", len(ackedIDs), len(unackedIDs))
	}

	// The restarted server recovers the trail from the database and its
	// WAL, verifies it, and continues it. The admin token and the agent's
	// session are in the same store and still valid.
	second := startServeProc(t, dataDir, "--digest-interval", "1s")
	recovered := verifyOnServer(t, c, second.endpoint, admin)
	const afterCrash = 50
	for i := range afterCrash {
		id := fmt.Sprintf("toolu_after_%03d", i)
		if status, out, err := preToolUse(c, second.endpoint, token, id, crashCommand(i, id)); !decided(status, out) {
			t.Fatalf("hook call %s after the restart: HTTP %d %+v %v", id, status, out, err)
		}
	}
	continued := verifyOnServer(t, c, second.endpoint, admin)
	if continued.Records < recovered.Records+afterCrash {
		t.Errorf("the trail has %d records after %d more decisions, had %d", continued.Records, afterCrash, recovered.Records)
	}
	var key audit.PublicKeyInfo
	if status, err := apiCall(c, "GET", second.endpoint+"/v1/audit/public-key", "", nil, &key); err != nil || status != http.StatusOK {
		t.Fatalf("public key: HTTP %d %v", status, err)
	}
	pub, err := key.Key()
	if err != nil {
		t.Fatal(err)
	}
	second.stop(t)

	// The trail, read offline: every record chained, every digest signed
	// and matching, and each answered decision in it exactly once.
	recs, digests := readTrail(t, filepath.Join(dataDir, "warden.db"))
	var v audit.Verifier
	for _, r := range recs {
		if b := v.Check(r); b != nil {
			t.Fatalf("the trail does not verify offline: %v", b)
		}
	}
	if err := audit.CheckDigests(ed25519.PublicKey(pub), digests, recs); err != nil {
		t.Errorf("the trail contradicts its signed digests: %v", err)
	}
	decisions, codes := map[string]int{}, map[audit.Code]int{}
	var started, stopped int
	for _, r := range recs {
		switch {
		case strings.HasPrefix(string(r.Code), "decision."):
			decisions[r.Ref]++
			codes[r.Code]++
		case r.Code == audit.ServerStarted:
			started++
		case r.Code == audit.ServerStopped:
			stopped++
		}
	}
	for id := range ackedIDs {
		if n := decisions[id]; n != 1 {
			t.Errorf("acknowledged decision %s has %d records, want 1", id, n)
		}
	}
	landed := 0
	for id, n := range decisions {
		switch {
		case n != 1 && !ackedIDs[id]: // acknowledged ones are reported above
			t.Errorf("decision %s has %d records", id, n)
		case unackedIDs[id]:
			landed++
		case !ackedIDs[id] && !strings.HasPrefix(id, "toolu_after_"):
			t.Errorf("decision %s in the trail was never sent", id)
		}
	}
	for i := range afterCrash {
		if id := fmt.Sprintf("toolu_after_%03d", i); decisions[id] != 1 {
			t.Errorf("decision %s after the restart has %d records", id, decisions[id])
		}
	}
	if started != 2 || stopped != 1 || recs[len(recs)-1].Code != audit.ServerStopped {
		t.Errorf("%d server.started and %d server.stopped records, last %s; want 2, 1 and the stop last (the crash leaves no stop)",
			started, stopped, recs[len(recs)-1].Code)
	}
	t.Logf("load %v, %d workers: %d decisions acknowledged before the SIGKILL (%.0f/s); %d calls unanswered (%d in flight at the kill, %d sent while it was under way), of which %d landed in the trail and %d did not",
		loadTime.Round(time.Millisecond), workers, len(ackedIDs), float64(len(ackedIDs))/loadTime.Seconds(),
		len(unackedIDs), len(unackedIDs)-lateCalls, lateCalls, landed, len(unackedIDs)-landed)
	t.Logf("after the restart: %d records verified (%d digests); %d decisions later, %d; offline: %d records, %d digests; decisions %v",
		recovered.Records, recovered.Digests, afterCrash, continued.Records, len(recs), len(digests), codes)
}

// TestServeStoreFault makes the store refuse audit records while `warden
// serve` runs, by a trigger created through a second connection to its
// database file (triggers are schema, so the server's writer sees it).
// Hook calls must then be refused with 503 and a deny decision, since no
// decision may go unrecorded; the server stays alive, and once the fault
// is gone decisions go through again and the trail verifies.
func TestServeStoreFault(t *testing.T) {
	l := startServe(t)
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	enrollKey := regexp.MustCompile(`--enroll-key (wdn_e_starter_\S+)`).FindStringSubmatch(l.banner)
	if enrollKey == nil {
		t.Fatalf("no enrollment key in the banner:\n%s", l.banner)
	}
	token := agentLogin(t, c, l.endpoint, enrollKey[1], "fault")
	call := func(id string) (int, hooks.Output) {
		t.Helper()
		status, out, err := preToolUse(c, l.endpoint, token, id, "git status")
		if err != nil {
			t.Fatalf("hook call %s: %v", id, err)
		}
		return status, out
	}
	if status, out := call("toolu_before"); !decided(status, out) {
		t.Fatalf("hook call before the fault: HTTP %d %+v", status, out)
	}

	path := filepath.Join(l.dataDir, "warden.db")
	other, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path}).String()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	schema := func(stmt string) {
		t.Helper()
		if _, err := other.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	schema(`CREATE TRIGGER fail_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`)

	const refusal = "the audit trail is unavailable, so the request is refused"
	status, out := call("toolu_during")
	if status != http.StatusServiceUnavailable || out.HookSpecificOutput == nil ||
		out.HookSpecificOutput.PermissionDecision != "deny" || out.HookSpecificOutput.PermissionDecisionReason != "Warden: "+refusal || out.Error != refusal {
		t.Errorf("hook call during the fault: HTTP %d %+v %+v, want 503, deny, %q", status, out, out.HookSpecificOutput, refusal)
	}
	// The outcome of a call allowed before the fault cannot be recorded
	// either, and the client is told so.
	outcome := map[string]any{"session_id": "crash-session", "hook_event_name": "PostToolUse", "tool_name": "Bash",
		"tool_input": map[string]any{"command": "git status"}, "tool_response": map[string]any{"exit_code": 0}, "tool_use_id": "toolu_before", "cwd": "/w"}
	var posted hooks.Output
	if status, err := apiCall(c, "POST", l.endpoint+"/v1/hooks/post-tool-use", token, outcome, &posted); err != nil ||
		status != http.StatusServiceUnavailable || posted.Error != "the audit trail is unavailable" {
		t.Errorf("PostToolUse during the fault: HTTP %d %+v %v, want 503", status, posted, err)
	}
	if status, err := apiCall(c, "GET", l.endpoint+"/healthz", "", nil, nil); err != nil || status != http.StatusOK {
		t.Errorf("/healthz during the fault: HTTP %d %v, want 200", status, err)
	}
	// Readiness checks that the trail can be read, not written.
	ready, err := apiCall(c, "GET", l.endpoint+"/readyz", "", nil, nil)
	t.Logf("/readyz during the fault: HTTP %d %v", ready, err)
	verifyOnServer(t, c, l.endpoint, l.admin) // reads go on

	schema(`DROP TRIGGER fail_audit`)
	if status, out := call("toolu_after"); !decided(status, out) {
		t.Fatalf("hook call after the fault: HTTP %d %+v", status, out)
	}
	rep := verifyOnServer(t, c, l.endpoint, l.admin)
	decisions := map[string]int{}
	for _, r := range auditRecords(t, l) {
		switch {
		case strings.HasPrefix(string(r.Code), "decision."):
			decisions[r.Ref]++
		case r.Code == audit.ToolOutcome:
			t.Errorf("the outcome refused during the fault is in the trail: %+v", r)
		}
	}
	if want := map[string]int{"toolu_before": 1, "toolu_after": 1}; !maps.Equal(decisions, want) {
		t.Errorf("decisions in the trail by tool_use_id: %v, want %v", decisions, want)
	}
	t.Logf("trail after the fault: %d records, verified", rep.Records)
}
