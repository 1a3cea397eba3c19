package cloud

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/gitproxy"
	"github.com/wardenhq/warden/shared/gitproxy/gittest"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/lambdas/apigwtest"
	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/secret"
	"github.com/wardenhq/warden/shared/server"
)

// TestGitThroughAPIGateway: real git, configured as agent setup
// configures it from GET /v1/git, clones and pushes through API Gateway's
// stand-in (git's request bodies binary, the stack's binary media types;
// API Gateway's and Lambda's size limits) and the llm function's handler,
// to git http-backend: the clone (a gzipped negotiation) and a feature
// branch go through, main is refused with the rule; a push of 3 MB, over
// git's default post buffer and under the limit, lands; a push over the
// limit is refused by Warden at git's probe, before git sends it, and
// recorded naming the limit; without the settings, the same push is
// refused by Lambda's payload limit, and lands nowhere.
func TestGitThroughAPIGateway(t *testing.T) {
	t.Parallel()
	upstreamURL, root := gittest.Upstream(t)
	bare, mainBefore := gittest.Seed(t, root, "acme/web")
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(`version: 1
rules:
  - {id: fetch, effect: allow, who: {project: web}, action: git:fetch, resource: "github.com/acme/*"}
  - {id: feature-branches, effect: allow, who: {project: web}, action: git:push, resource: "github.com/acme/web:refs/heads/feature/*"}
  - {id: no-main-push, effect: deny, action: git:push, resource: "*:refs/heads/main"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	db := newDB(t)
	app, err := New(t.Context(), Options{DB: db, Policy: policyload.File(policyFile),
		GitConfig: []byte("upstreams:\n  github.com: {url: " + upstreamURL + ", username: " + gittest.Username + ", password_env: GITHUB_TOKEN}\n"),
		Secrets:   secret.Map{"audit-signing-key": strings.Repeat("k", 40), "github-token": gittest.Token},
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	token := agentToken(t, app)
	gw := &apigwtest.Streaming{Function: lambdas.Streaming(app.Handler()), Stage: "prod",
		BinaryMediaTypes: []string{gitproxy.UploadPackRequest, gitproxy.ReceivePackRequest}}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	// Warden's endpoint on AWS is the API's stage URL: it has a path.
	endpoint := srv.URL + "/prod"

	resp, err := http.Get(endpoint + "/v1/git")
	if err != nil {
		t.Fatal(err)
	}
	var st server.GitStatus
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.MaxPushBytes != lambdas.MaxBinaryBody || len(st.Hosts) != 1 {
		t.Fatalf("GET /v1/git: %+v %v", st, err)
	}
	// The agent's git configuration, as agent setup writes it (its
	// credential helper here answers with the token itself).
	home := func(settings [][2]string) []string {
		env := gittest.Env(t.TempDir())
		for _, kv := range append(settings, [2]string{"credential." + endpoint + ".helper",
			"!f() { echo username=warden; echo password=" + token + "; }; f"}) {
			gittest.Must(t, "", env, "config", "--global", "--add", kv[0], kv[1])
		}
		return env
	}
	agent := home(gitproxy.ClientSettings(endpoint, st.Hosts, st.MaxPushBytes))
	work := filepath.Join(t.TempDir(), "web")
	gittest.Must(t, "", agent, "clone", "https://github.com/acme/web.git", work)
	commit := func(name string, size int) string {
		data := make([]byte, size)
		rand.NewChaCha8([32]byte{byte(size)}).Read(data)
		if err := os.WriteFile(filepath.Join(work, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		gittest.Must(t, work, agent, "add", name)
		gittest.Must(t, work, agent, "commit", "-q", "-m", name)
		return strings.TrimSpace(gittest.Must(t, work, agent, "rev-parse", "HEAD"))
	}
	upstreamRef := func(ref string) string {
		out, _ := gittest.Run(bare, gittest.Env(t.TempDir()), "rev-parse", "--verify", "-q", ref)
		return strings.TrimSpace(out)
	}

	head := commit("small.txt", 100)
	gittest.Must(t, work, agent, "push", "origin", "HEAD:refs/heads/feature/x")
	if got := upstreamRef("refs/heads/feature/x"); got != head {
		t.Errorf("feature/x upstream is %q, want %s", got, head)
	}
	out, err := gittest.Run(work, agent, "push", "origin", "HEAD:refs/heads/main")
	if err == nil || !strings.Contains(out, "remote: warden: push to refs/heads/main refused by rule no-main-push") {
		t.Errorf("push to main: %v\n%s", err, out)
	}
	if got := upstreamRef("refs/heads/main"); got != mainBefore {
		t.Errorf("main moved upstream: %s", got)
	}

	// Over the limit: git probes first, and Warden refuses the probe.
	big := commit("big.bin", 5<<20)
	out, err = gittest.Run(work, agent, "push", "origin", "HEAD:refs/heads/feature/big")
	if err == nil || !strings.Contains(out, "HTTP 413") {
		t.Errorf("push over the limit: %v\n%s", err, out)
	}
	if got := upstreamRef("refs/heads/feature/big"); got != "" {
		t.Errorf("feature/big exists upstream: %s", got)
	}
	if n := gw.Largest(); n > 64<<10 {
		t.Errorf("the gateway received a request of %d bytes: the push was sent before it was refused", n)
	}
	// The trail as appended (the archiver, absent here, sequences it).
	recs := dynamotest.Appended(t, db)
	limit := fmt.Sprintf("the push is larger than this git remote's limit of %d bytes (on AWS a push reaches Warden within Lambda's 6 MB request payload)", lambdas.MaxBinaryBody)
	found := false
	for _, r := range recs {
		if r.Code == audit.RequestRefused && r.Action == "git:push" && r.Resource == "github.com/acme/web" && strings.HasPrefix(r.Reason, limit) {
			found = true
		}
	}
	if !found {
		t.Errorf("no refusal naming the limit in the trail (%d records)", len(recs))
	}

	// Under the limit and over git's default post buffer (1 MiB): sent in
	// one request, as binary, and landed.
	gittest.Must(t, work, agent, "reset", "-q", "--hard", "HEAD~1")
	mid := commit("mid.bin", 3<<20)
	gittest.Must(t, work, agent, "push", "origin", "HEAD:refs/heads/feature/mid")
	if got := upstreamRef("refs/heads/feature/mid"); got != mid {
		t.Errorf("feature/mid upstream is %q, want %s", got, mid)
	}

	// Without the settings git sends the push, and Lambda refuses it.
	plain := home(gitproxy.ClientSettings(endpoint, st.Hosts, 0))
	gittest.Must(t, work, plain, "reset", "-q", "--hard", big)
	out, err = gittest.Run(work, plain, "push", "origin", "HEAD:refs/heads/feature/big")
	if err == nil || !strings.Contains(out, "HTTP 413") {
		t.Errorf("push over the limit without the settings: %v\n%s", err, out)
	}
	if got := upstreamRef("refs/heads/feature/big"); got != "" {
		t.Errorf("feature/big exists upstream: %s", got)
	}
	if n := gw.Largest(); n < lambdas.MaxBinaryBody {
		t.Errorf("largest request %d bytes: the push was not sent", n)
	}
	t.Logf("a push over the limit without agent setup's settings:\n%s", out)

	// A clone whose answer would pass what the remote can stream ends with
	// an error git prints, naming the bound, instead of a pack cut short.
	remote := app.Server.Git.(*gitproxy.Proxy)
	if remote.MaxAnswer != GitAnswerLimit {
		t.Errorf("the remote's answer limit is %+v, want %+v", remote.MaxAnswer, GitAnswerLimit)
	}
	remote.MaxAnswer = gitproxy.Limit{Bytes: 1 << 20, Why: "a test's bound"}
	out, err = gittest.Run("", agent, "clone", "-q", "--branch", "feature/mid", "https://github.com/acme/web.git", filepath.Join(t.TempDir(), "big"))
	if err == nil || !strings.Contains(out, "remote: warden: this clone or fetch is larger than this git remote can send (1048576 bytes: a test's bound)") {
		t.Errorf("a clone over the answer limit: %v\n%s", err, out)
	}
	t.Logf("a clone over the answer limit:\n%s", out)
}
