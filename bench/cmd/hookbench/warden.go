package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

// hookPath is the decision endpoint; the trivial server answers on it too.
const hookPath = "/v1/hooks/pre-tool-use"

// hookBody returns the body of request i of a run labelled label: a Claude
// Code PreToolUse call whose session_id is the label and whose tool_use_id
// is unique within the run, so that the audit trail can be checked per run.
// Each pushes its own branch: the same command a thousand times a second
// would be a runaway loop to the policy's watchdog.
func hookBody(label string) func(i int) []byte {
	return func(i int) []byte {
		return fmt.Appendf(nil, `{"session_id":%q,"hook_event_name":"PreToolUse","tool_name":"Bash",`+
			`"tool_input":{"command":"git push origin feature/x%d"},"tool_use_id":"t%d","cwd":"/w"}`, label, i, i)
	}
}

// warden is a running `warden serve` with a project and a session.
type warden struct {
	*proc
	endpoint     string
	adminToken   string
	sessionToken string
	api          *http.Client
}

// startWarden starts `warden serve` on a free loopback port with its data
// in dir, and reads its endpoint and admin token from the banner.
func startWarden(ctx context.Context, bin, dir string) (*warden, error) {
	p, err := startProc("warden", filepath.Join(dir, "warden.log"), bin, "serve",
		"--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--shutdown-grace", "5s")
	if err != nil {
		return nil, err
	}
	w := &warden{proc: p, api: &http.Client{Timeout: 30 * time.Second}}
	if w.endpoint, err = p.waitLine(ctx, "export WARDEN_ENDPOINT=", 30*time.Second); err == nil {
		w.adminToken, err = p.waitLine(ctx, "export WARDEN_ADMIN_TOKEN=", 5*time.Second)
	}
	if err == nil {
		err = w.waitReady(ctx, 30*time.Second)
	}
	if err != nil {
		_ = p.stop(5 * time.Second)
		return nil, err
	}
	return w, nil
}

func (w *warden) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		status, _, err := w.call(ctx, http.MethodGet, "/readyz", "", nil, nil)
		if err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warden at %s not ready within %v: status %d, %v%s", w.endpoint, timeout, status, err, w.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// call sends a JSON request and decodes a 2xx JSON answer into out. It
// returns the status and the raw answer; a non-2xx answer is an error.
func (w *warden) call(ctx context.Context, method, path, token string, in, out any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.endpoint+path, body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := w.api.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, data, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, data, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, data, nil
}

// login creates a project and logs an agent in, keeping its session token.
func (w *warden) login(ctx context.Context, project, agent string) error {
	var created struct {
		EnrollKey string `json:"enroll_key"`
	}
	if _, _, err := w.call(ctx, http.MethodPost, "/v1/admin/projects", w.adminToken, map[string]string{"name": project}, &created); err != nil {
		return fmt.Errorf("create project %q: %w", project, err)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if _, _, err := w.call(ctx, http.MethodPost, "/v1/agent/login", "", map[string]string{"enroll_key": created.EnrollKey, "agent": agent}, &sess); err != nil {
		return fmt.Errorf("log in agent %s/%s: %w", project, agent, err)
	}
	if created.EnrollKey == "" || sess.Token == "" {
		return fmt.Errorf("log in agent %s/%s: no enrollment key or no session token in the answers", project, agent)
	}
	w.sessionToken = sess.Token
	return nil
}

// probe makes one decision and returns the answer's body, which the
// trivial server then sends back verbatim. The decision must be an allow.
func (w *warden) probe(ctx context.Context, label string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint+hookPath, bytes.NewReader(hookBody(label)(0)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.sessionToken)
	resp, err := w.api.Do(req)
	if err != nil {
		return nil, fmt.Errorf("probe decision: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("probe decision: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"permissionDecision":"allow"`)) {
		return nil, fmt.Errorf("probe decision: want 200 with an allow decision, got HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// trailCount is what the audit trail holds for one run label.
type trailCount struct {
	decisions int            // decision.* records
	others    map[string]int // any other code, by code
	refs      map[string]int // decision records by tool_use_id
}

// countTrail reads the whole audit trail through the admin API and counts
// the records of each label (the hook call's session_id).
func (w *warden) countTrail(ctx context.Context) (map[string]*trailCount, int, error) {
	counts := map[string]*trailCount{}
	total := 0
	var after int64
	for page := 0; ; page++ {
		if page == 100_000 { // 1e8 records: more than any run here writes
			return nil, 0, fmt.Errorf("read audit trail: still reading after %d pages", page)
		}
		var recs []audit.Record
		path := fmt.Sprintf("/v1/admin/audit?after=%d&limit=1000", after)
		if _, _, err := w.call(ctx, http.MethodGet, path, w.adminToken, nil, &recs); err != nil {
			return nil, 0, fmt.Errorf("read audit trail: %w", err)
		}
		if len(recs) == 0 {
			return counts, total, nil
		}
		for _, r := range recs {
			total++
			if r.ClientSession == "" {
				continue
			}
			c := counts[r.ClientSession]
			if c == nil {
				c = &trailCount{others: map[string]int{}, refs: map[string]int{}}
				counts[r.ClientSession] = c
			}
			if strings.HasPrefix(string(r.Code), "decision.") {
				c.decisions++
				c.refs[r.Ref]++
			} else {
				c.others[string(r.Code)]++
			}
		}
		after = recs[len(recs)-1].Seq
	}
}
