package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardenhq/warden/bench/gatewaybench"
	"github.com/wardenhq/warden/bench/internal/child"
	"github.com/wardenhq/warden/shared/audit"
)

// The project and agent the benchmark logs in as.
const (
	benchProject = "gatewaybench"
	benchAgent   = "bench"
)

// benchPolicy allows the benchmark's agent the stand-in's model. With
// budgetPolicy after it, under a budget no run exhausts and a rate limit
// no run reaches, so that every call is decided, counted by the limiter,
// reserved against the budget, settled and recorded as in production.
const benchPolicy = `version: 1
rules:
  - id: bench-models
    description: The benchmark's agent calls Claude models (the stand-in upstream).
    effect: allow
    who: {project: ` + benchProject + `}
    action: llm:invoke
    resource: anthropic/claude-*
`

const budgetPolicy = `budgets:
  - id: bench-project-usd
    scope: project
    period: day
    usd: 1000000
rate_limits:
  - id: bench-llm-requests
    scope: session
    action: llm:invoke
    requests: 100000000
    per: 1m
`

// keyEnv names the variable that holds the provider key warden sends the
// stand-in.
const keyEnv = "GATEWAYBENCH_PROVIDER_KEY"

// llmConfig routes Claude models to the stand-in at upstream (host:port).
func llmConfig(upstream string) string {
	return fmt.Sprintf("upstreams:\n  anthropic: {api: anthropic, url: %q, key_env: %s}\nroutes:\n  - {model: \"claude-*\", upstream: anthropic}\n",
		"http://"+upstream, keyEnv)
}

// providerKey returns a fresh provider key, which only warden and the
// stand-in know.
func providerKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "sk-ant-gatewaybench-" + hex.EncodeToString(b)
}

// warden is a running `warden serve` with the benchmark's project and
// session.
type warden struct{ *child.Warden }

// startWarden starts `warden serve` on a free loopback port with its data
// in dir, the benchmark's policy (with its budget and rate limit if
// budget) and the stand-in at upstream as its Anthropic upstream, and
// reads its endpoint and admin token from the banner.
func startWarden(ctx context.Context, bin, dir, upstream, key string, budget bool) (*warden, error) {
	policyPath, confPath := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "llm.yaml")
	pol := benchPolicy
	if budget {
		pol += budgetPolicy
	}
	if err := os.WriteFile(policyPath, []byte(pol), 0o600); err != nil {
		return nil, fmt.Errorf("write the policy: %w", err)
	}
	if err := os.WriteFile(confPath, []byte(llmConfig(upstream)), 0o600); err != nil {
		return nil, fmt.Errorf("write the gateway configuration: %w", err)
	}
	w, err := child.StartWarden(ctx, bin, dir, []string{keyEnv + "=" + key},
		"--policy", policyPath, "--llm-config", confPath, "--first-project", "")
	if err != nil {
		return nil, err
	}
	return &warden{w}, nil
}

// trailCount is what the audit trail holds for the calls of one run,
// labelled by the client session ID the calls carried.
type trailCount struct {
	decisions int            // decision.allow records
	others    map[string]int // other decision codes, by code
	usage     int            // llm.usage records linked to one of the run's decisions
	usageOK   int            // of which status ok, with the stand-in's exact tokens and a cost
	firstBad  string         // one llm.usage record that is not
}

// countTrail reads the whole audit trail through the admin API. Decisions
// are counted by the label their call carried (X-Claude-Code-Session-Id);
// each llm.usage record is linked to its decision by ref.
func (w *warden) countTrail(ctx context.Context) (counts map[string]*trailCount, total, orphans int, err error) {
	counts = map[string]*trailCount{}
	labelOf := map[string]string{} // decision ref -> label
	var usage []audit.Record
	var after int64
	for page := 0; ; page++ {
		if page == 100_000 { // 1e8 records: more than any run here writes
			return nil, 0, 0, fmt.Errorf("read audit trail: still reading after %d pages", page)
		}
		var recs []audit.Record
		path := fmt.Sprintf("/v1/admin/audit?after=%d&limit=1000", after)
		if _, _, err := w.Call(ctx, http.MethodGet, path, w.AdminToken, nil, &recs); err != nil {
			return nil, 0, 0, fmt.Errorf("read audit trail: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			total++
			switch {
			case r.Code == audit.LLMUsage:
				usage = append(usage, r)
			case strings.HasPrefix(string(r.Code), "decision.") && r.Action == "llm:invoke":
				c := counts[r.ClientSession]
				if c == nil {
					c = &trailCount{others: map[string]int{}}
					counts[r.ClientSession] = c
				}
				if r.Code == audit.DecisionAllow {
					c.decisions++
				} else {
					c.others[string(r.Code)]++
				}
				labelOf[r.Ref] = r.ClientSession
			}
		}
		after = recs[len(recs)-1].Seq
	}
	for _, r := range usage {
		label, ok := labelOf[r.Ref]
		if !ok {
			orphans++
			continue
		}
		c := counts[label]
		c.usage++
		var u audit.Usage
		err := json.Unmarshal(r.Args, &u)
		want := gatewaybench.Usage
		if err == nil && r.Status == "ok" && u.InputTokens == want.Input && u.OutputTokens == want.Output &&
			u.CacheReadTokens == want.CacheRead && u.CacheWrite5mTokens == want.CacheWrite && !u.Estimated && u.CostUSD != "" && u.CostUSD != "0" {
			c.usageOK++
		} else if c.firstBad == "" {
			c.firstBad = fmt.Sprintf("status %q, %s", r.Status, r.Args)
		}
	}
	return counts, total, orphans, nil
}
