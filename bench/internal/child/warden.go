package child

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"
)

// Warden is a running `warden serve`, with its endpoint and admin token
// and, once Login has run, an agent's session token.
type Warden struct {
	*Process
	Endpoint     string
	AdminToken   string
	SessionToken string
	API          *http.Client
}

// StartWarden starts `warden serve` on a free loopback port with its data
// in dir, env added to its environment and args after the benchmark's own
// (address, data directory, shutdown grace), reads its endpoint and admin
// token from the banner and waits until it is ready.
func StartWarden(ctx context.Context, bin, dir string, env []string, args ...string) (*Warden, error) {
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--shutdown-grace", "5s"}, args...)
	p, err := Start("warden", filepath.Join(dir, "warden.log"), env, bin, args...)
	if err != nil {
		return nil, err
	}
	w := &Warden{Process: p, API: &http.Client{Timeout: 30 * time.Second}}
	if w.Endpoint, err = p.WaitLine(ctx, "export WARDEN_ENDPOINT=", 30*time.Second); err == nil {
		w.AdminToken, err = p.WaitLine(ctx, "export WARDEN_ADMIN_TOKEN=", 5*time.Second)
	}
	if err == nil {
		err = w.waitReady(ctx, 30*time.Second)
	}
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return w, nil
}

func (w *Warden) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		status, _, err := w.Call(ctx, http.MethodGet, "/readyz", "", nil, nil)
		if err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warden at %s not ready within %v: status %d, %v%s", w.Endpoint, timeout, status, err, w.LogTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Call sends a JSON request and decodes a 2xx JSON answer into out. It
// returns the status and the raw answer; a non-2xx answer is an error.
func (w *Warden) Call(ctx context.Context, method, path, token string, in, out any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.Endpoint+path, body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := w.API.Do(req)
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

// Login creates a project and logs an agent in, keeping its session token.
func (w *Warden) Login(ctx context.Context, project, agent string) error {
	var created struct {
		EnrollKey string `json:"enroll_key"`
	}
	if _, _, err := w.Call(ctx, http.MethodPost, "/v1/admin/projects", w.AdminToken, map[string]string{"name": project}, &created); err != nil {
		return fmt.Errorf("create project %q: %w", project, err)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if _, _, err := w.Call(ctx, http.MethodPost, "/v1/agent/login", "", map[string]string{"enroll_key": created.EnrollKey, "agent": agent}, &sess); err != nil {
		return fmt.Errorf("log in agent %s/%s: %w", project, agent, err)
	}
	if created.EnrollKey == "" || sess.Token == "" {
		return fmt.Errorf("log in agent %s/%s: no enrollment key or no session token in the answers", project, agent)
	}
	w.SessionToken = sess.Token
	return nil
}
