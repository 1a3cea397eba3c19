package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wardenhq/warden/bench/internal/child"
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
type warden struct{ *child.Warden }

// startWarden starts `warden serve` on a free loopback port with its data
// in dir.
func startWarden(ctx context.Context, bin, dir string) (*warden, error) {
	w, err := child.StartWarden(ctx, bin, dir, nil, "--first-project", "") // the benchmark creates its own
	if err != nil {
		return nil, err
	}
	return &warden{w}, nil
}

// probe makes one decision and returns the answer's body, which the
// trivial server then sends back verbatim. The decision must be an allow.
func (w *warden) probe(ctx context.Context, label string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.Endpoint+hookPath, bytes.NewReader(hookBody(label)(0)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.SessionToken)
	resp, err := w.API.Do(req)
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
		if _, _, err := w.Call(ctx, http.MethodGet, path, w.AdminToken, nil, &recs); err != nil {
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
