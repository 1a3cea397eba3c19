package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/policy/examples"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/pipeline"
	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/server"
	"github.com/wardenhq/warden/shared/sqlite"
)

// BenchmarkPreToolUseSerial is one hook decision at a time through the
// server's handler, in process: authenticate (cached), decide, and the
// fsynced audit commit, which alone dominates. Measured 2026-11-26, 2 cores:
// 318–373 µs/op, over half of it in pwrite and fsync system calls.
func BenchmarkPreToolUseSerial(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "w.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p, err := policy.Load("p", examples.Policy)
	if err != nil {
		b.Fatal(err)
	}
	ids := identity.NewService(identity.NewCachedStore(db.Identity()), nil)
	key, err := ids.CreateProject(ctx, "project-a")
	if err != nil {
		b.Fatal(err)
	}
	_, tok, err := ids.Login(ctx, key, "a", nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	pipe := &pipeline.Pipeline{Auth: ids, Policy: policyload.Static(p), Approvals: pipeline.NoApprovals{}, Budget: pipeline.NoBudget{}, Audit: db.Audit()}
	srv := &server.Server{Identity: ids, Pipeline: pipe, Audit: db.Audit(), Trail: db.Audit()}
	h := srv.Handler()
	body := `{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"git push origin feature/x"},"tool_use_id":"t1","cwd":"/w"}`
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/hooks/pre-tool-use", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
