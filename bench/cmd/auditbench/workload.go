package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/audit"
)

// largeSize is the size of a large session: the replay target is about a
// session of exactly this many records.
const largeSize = 10_000

// Bounds on the size of an ordinary session, login included.
const (
	minSmall = 2
	maxSmall = largeSize / 2
)

// session is one agent session of the trail: its identity, how many
// records it is planned to have and, once ingested, how many it got.
type session struct {
	id, project, agent, client string
	large                      bool
	size                       int // records planned, login included
	written                    int // records appended; set by the appender that ran it
	seed                       uint64
}

var (
	projects = []string{"project-a", "data-pipeline", "billing", "mobile-app", "infra", "search",
		"payments-api", "web-frontend", "ml-platform", "docs-site", "identity", "notifications"}
	agents = []string{"claude-code", "codex-ci", "claude-data", "codex-cli", "claude-review", "claude-ops"}
)

// plan lays out a trail of exactly records records over sessions sessions,
// large of which have exactly largeSize records. The ordinary sessions'
// sizes are log-normal (a few long, many short), between minSmall and
// maxSmall. Large sessions come first, the rest in random order: the order
// in which the appenders start them.
func plan(rng *rand.Rand, records, sessions, large int) ([]*session, error) {
	small := sessions - large
	rest := records - large*largeSize
	switch {
	case large < 0 || small < 1:
		return nil, fmt.Errorf("%d sessions with %d large: want at least one ordinary session", sessions, large)
	case rest < small*minSmall || rest > small*maxSmall:
		return nil, fmt.Errorf("%d records in %d sessions: %d large sessions of %d records leave %d records for the other %d sessions, which need between %d and %d each",
			records, sessions, large, largeSize, rest, small, minSmall, maxSmall)
	}
	weights := make([]float64, small)
	var sum float64
	for i := range weights {
		weights[i] = math.Exp(rng.NormFloat64())
		sum += weights[i]
	}
	sizes := make([]int, small)
	got := 0
	for i, w := range weights {
		sizes[i] = min(max(int(math.Round(w/sum*float64(rest))), minSmall), maxSmall)
		got += sizes[i]
	}
	// Clamping and rounding leave the total off; walk it back one record
	// at a time on random sessions that have room.
	for diff := rest - got; diff != 0; {
		i := rng.IntN(small)
		switch {
		case diff > 0 && sizes[i] < maxSmall:
			sizes[i]++
			diff--
		case diff < 0 && sizes[i] > minSmall:
			sizes[i]--
			diff++
		}
	}
	out := make([]*session, 0, sessions)
	for i := range sessions {
		s := &session{
			id:      randomHex(rng, 12), // identity.Session IDs are 12 random bytes in hex
			project: projects[rng.IntN(len(projects))],
			agent:   agents[rng.IntN(len(agents))],
			client:  uuid(rng),
			seed:    rng.Uint64(),
		}
		if i < large {
			s.large, s.size = true, largeSize
		} else {
			s.size = sizes[i-large]
		}
		out = append(out, s)
	}
	ordinary := out[large:]
	rng.Shuffle(len(ordinary), func(i, j int) { ordinary[i], ordinary[j] = ordinary[j], ordinary[i] })
	return out, nil
}

// records yields the session's records in the order an agent produces them:
// the login, then tool calls, each a decision and, when allowed, the
// outcome that follows it, until exactly s.size records. Times are read
// from the clock as each record is made, as the server does.
func (s *session) records(policyVersion string) iter.Seq[audit.Record] {
	return func(yield func(audit.Record) bool) {
		rng := rand.New(rand.NewPCG(s.seed, 0x5eed))
		base := audit.Record{Project: s.project, Agent: s.agent, Session: s.id}
		login := base
		login.ID, login.Time, login.Code = audit.NewID(), time.Now().UTC(), audit.SessionLogin
		if !yield(login) {
			return
		}
		for left := s.size - 1; left > 0; {
			c := newCall(rng)
			d := base
			d.ID, d.Time, d.ClientSession, d.Ref = audit.NewID(), time.Now().UTC(), s.client, c.ref
			d.Kind, d.Action, d.Resource, d.Args = policy.KindOf(c.action).String(), c.action, c.resource, c.args
			d.Code, d.Effect, d.Rule, d.Reason, d.PolicyVersion = c.code, c.effect, c.rule, c.reason, policyVersion
			if !yield(d) {
				return
			}
			left--
			if c.code != audit.DecisionAllow || c.kind != "tool" || left == 0 {
				continue
			}
			o := base
			o.ID, o.Time, o.Code, o.ClientSession, o.Ref = audit.NewID(), time.Now().UTC(), audit.ToolOutcome, s.client, c.ref
			o.Kind, o.Action, o.Resource = "tool", c.action, c.resource
			o.Status, o.DurationMS, o.Args = c.outcome(rng)
			if !yield(o) {
				return
			}
			left--
		}
	}
}

// call is one request of an agent and the decision the example policy
// (policy/examples/policy.yaml) gives it.
type call struct {
	kind, action, resource, ref string
	args                        json.RawMessage
	code                        audit.Code
	effect, rule, reason        string
}

// Rules of the example policy, with their descriptions as reasons.
var (
	ruleShell    = rule{"shell", "The shell is allowed; the rules below carve out what is not."}
	ruleTools    = rule{"everyday-tools", "Reading and editing code in the workspace."}
	ruleSecrets  = rule{"no-secrets-files", "Agents never read or write credentials files."}
	ruleRootWipe = rule{"no-root-wipe", ""}
	ruleRisky    = rule{"risky-shell-needs-approval", "Pushing to main and applying infrastructure need a human."}
	ruleMCP      = rule{"approved-mcp-tools", ""}
	ruleModels   = rule{"two-bedrock-models", "Only the two approved Claude models on Bedrock."}
)

type rule struct{ id, reason string }

// Shell commands agents run, with %s filled from words.
var commands = []string{
	"git status", "git diff --stat", "git diff HEAD~1 -- src/%s.ts", "git log --oneline -20",
	"git checkout -b feature/%s", "git add -A", `git commit -m "Fix %s handling in the %s service"`,
	"git push origin feature/%s", "git push -u origin feature/%s", "git fetch origin && git rebase origin/main",
	"go test ./...", "go test -run Test%s ./internal/%s/...", "go build ./...", "go vet ./...", "golangci-lint run ./...",
	"npm install", "npm run build", "npm test -- --watch=false", "pnpm lint --fix", "npx tsc --noEmit",
	"pytest -q tests/test_%s.py", "python -m pip install -r requirements.txt", "uv run pytest -k %s",
	"ls -la", "ls src/%s", "cat package.json", `grep -rn "%s" src/ --include=*.ts`, "find . -name '*.go' -newer go.mod",
	"make build", "make test", "docker build -t acme/%s:dev .", "docker compose up -d db", "docker compose logs --tail=100 api",
	"kubectl get pods -n staging", "kubectl logs deploy/%s -n staging --tail=200", "kubectl rollout status deploy/%s -n staging",
	"terraform plan -out=tfplan", "aws s3 ls s3://data-lake/raw/%s/", "aws logs tail /ecs/%s --since 10m",
	"curl -s https://api.github.com/repos/acme/web/pulls?state=open", `psql "$DATABASE_URL" -c 'SELECT count(*) FROM orders'`,
	"rm -rf node_modules dist", "cargo test --workspace", "./scripts/migrate.sh --dry-run", "tail -n 100 logs/app.log",
	"jq '.dependencies' package.json", `sed -i 's/%s/%s/g' src/config.ts`, "wc -l $(git ls-files '*.go')",
}

// Commands the example policy refuses or holds for approval.
var (
	risky    = []string{"git push origin main", "terraform apply tfplan", "git push --force origin HEAD:main"}
	wipes    = []string{"rm -rf /", "rm -rf ~/", "dd if=/dev/zero of=/dev/sda bs=1M"}
	words    = []string{"billing", "checkout", "session", "retry", "webhook", "invoice", "cache", "auth", "rate-limit", "search", "upload", "export", "timezone", "pagination", "migration"}
	files    = []string{"src/api/handler.ts", "src/api/routes.ts", "internal/store/postgres.go", "internal/api/server.go", "cmd/api/main.go", "README.md", "package.json", "go.mod", "tests/test_billing.py", "src/components/Checkout.tsx", "infra/main.tf", "docs/architecture.md", ".github/workflows/ci.yml"}
	secrets  = []string{".env", ".env.production", "deploy/key.pem"}
	repos    = []string{"web", "billing", "api", "pipeline"}
	models   = []string{"bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock/anthropic.claude-haiku-4-5-20251001-v1:0"}
	sites    = []string{"https://pkg.go.dev/net/http", "https://docs.python.org/3/library/asyncio.html", "https://developer.mozilla.org/en-US/docs/Web/API/fetch", "https://stackoverflow.com/questions/tagged/postgresql"}
	outputs  = []string{"ok  \tgithub.com/acme/web/internal/api\t0.412s\nok  \tgithub.com/acme/web/internal/store\t1.087s\n", "On branch feature/checkout\nnothing to commit, working tree clean\n", "\n> web@1.4.2 build\n> vite build\n\nvite v5.4.8 building for production...\n✓ 1432 modules transformed.\ndist/index.html  0.46 kB\ndist/assets/index-4f9a1c2e.js  312.70 kB │ gzip: 98.12 kB\n✓ built in 6.41s\n", "NAME                   READY   STATUS    RESTARTS   AGE\napi-7d9c8b6f5-2xkqp    1/1     Running   0          3h12m\nworker-5b7d9c4f-8mz2l  1/1     Running   2          3h12m\n", "", "3 files changed, 41 insertions(+), 12 deletions(-)\n"}
	snippets = []string{"func (s *Server) handleCheckout(w http.ResponseWriter, r *http.Request) {", "export async function fetchInvoices(customerId: string): Promise<Invoice[]> {", "def test_retry_backoff(monkeypatch):", "resource \"aws_s3_bucket\" \"raw\" {"}
)

func newCall(rng *rand.Rand) call {
	c := call{kind: "tool", ref: toolUseID(rng)}
	allow := func(r rule) { c.code, c.effect, c.rule, c.reason = audit.DecisionAllow, "allow", r.id, r.reason }
	path := "/workspace/" + repos[rng.IntN(len(repos))] + "/" + files[rng.IntN(len(files))]
	switch p := rng.IntN(100); {
	case p < 45:
		c.action = "tool:Bash"
		switch q := rng.IntN(100); {
		case q < 2:
			c.resource = wipes[rng.IntN(len(wipes))]
			c.code, c.effect, c.rule, c.reason = audit.DecisionDeny, "deny", ruleRootWipe.id, ruleRootWipe.reason
		case q < 5:
			c.resource = risky[rng.IntN(len(risky))]
			c.code, c.effect, c.rule, c.reason = audit.DecisionApproval, "approve", ruleRisky.id, ruleRisky.reason
		default:
			c.resource = fill(rng, commands[rng.IntN(len(commands))])
			allow(ruleShell)
		}
		c.args = mustJSON(map[string]any{"command": c.resource, "description": "Run " + strings.Fields(c.resource)[0]})
	case p < 65:
		c.action = "tool:Read"
		if rng.IntN(100) < 3 {
			path = "/workspace/" + repos[rng.IntN(len(repos))] + "/" + secrets[rng.IntN(len(secrets))]
			c.code, c.effect, c.rule, c.reason = audit.DecisionDeny, "deny", ruleSecrets.id, ruleSecrets.reason
		} else {
			allow(ruleTools)
		}
		c.resource, c.args = path, mustJSON(map[string]any{"file_path": path})
	case p < 75:
		c.action, c.resource = "tool:Edit", path
		old := snippets[rng.IntN(len(snippets))]
		c.args = mustJSON(map[string]any{"file_path": path, "old_string": old, "new_string": old + "\n\t// " + words[rng.IntN(len(words))]})
		allow(ruleTools)
	case p < 83:
		c.action, c.resource = "tool:Grep", "/workspace/"+repos[rng.IntN(len(repos))]
		c.args = mustJSON(map[string]any{"pattern": words[rng.IntN(len(words))], "path": c.resource, "output_mode": "files_with_matches"})
		allow(ruleTools)
	case p < 87:
		c.action, c.resource = "tool:Write", path
		c.args = mustJSON(map[string]any{"file_path": path, "content": snippets[rng.IntN(len(snippets))] + "\n}\n"})
		allow(ruleTools)
	case p < 90:
		c.action, c.resource = "tool:Glob", "/workspace/"+repos[rng.IntN(len(repos))]
		c.args = mustJSON(map[string]any{"pattern": "**/*.go"})
		allow(ruleTools)
	case p < 93:
		c.action, c.resource = "tool:WebFetch", sites[rng.IntN(len(sites))]
		c.args = mustJSON(map[string]any{"url": c.resource, "prompt": "Summarise the API of this page"})
		c.code, c.effect, c.reason = audit.DecisionDeny, "deny", policy.DefaultDenyReason
	case p < 95:
		c.action = "tool:mcp__github__create_pull_request"
		c.args = mustJSON(map[string]any{"owner": "acme", "repo": repos[rng.IntN(len(repos))], "title": "Fix " + words[rng.IntN(len(words))] + " handling", "head": "feature/" + words[rng.IntN(len(words))], "base": "main"})
		allow(ruleMCP)
	default:
		c.kind, c.action, c.resource = "llm", "llm:invoke", models[rng.IntN(len(models))]
		allow(ruleModels)
	}
	return c
}

// outcome makes the tool.outcome fields of an allowed call: its status,
// duration and the recorded response.
func (c call) outcome(rng *rand.Rand) (status string, durationMS int64, args json.RawMessage) {
	status, exit := "completed", 0
	switch p := rng.IntN(100); {
	case p < 3:
		status = "interrupted"
	case p < 15:
		status, exit = "error", 1
	}
	median := 15.0
	var resp map[string]any
	switch c.action {
	case "tool:Bash":
		median = 900
		resp = map[string]any{"stdout": outputs[rng.IntN(len(outputs))], "stderr": "", "interrupted": status == "interrupted", "exit_code": exit}
	case "tool:Read":
		resp = map[string]any{"type": "text", "file": map[string]any{"filePath": c.resource, "content": snippets[rng.IntN(len(snippets))] + "\n\t...\n}\n", "numLines": 40 + rng.IntN(400), "startLine": 1}}
	case "tool:Grep":
		resp = map[string]any{"mode": "files_with_matches", "filenames": []string{files[rng.IntN(len(files))], files[rng.IntN(len(files))]}, "numFiles": 2}
	default:
		resp = map[string]any{"success": status == "completed"}
	}
	durationMS = int64(median * math.Exp(rng.NormFloat64()))
	return status, durationMS, mustJSON(map[string]any{"response": resp})
}

// fill replaces each %s of a command with a random word.
func fill(rng *rand.Rand, cmd string) string {
	for strings.Contains(cmd, "%s") {
		cmd = strings.Replace(cmd, "%s", words[rng.IntN(len(words))], 1)
	}
	return cmd
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil { // maps of strings and numbers always encode
		return json.RawMessage(`{}`)
	}
	return b
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// toolUseID makes an ID such as Claude Code's tool_use_id.
func toolUseID(rng *rand.Rand) string {
	b := []byte("toolu_01")
	for range 22 {
		b = append(b, base62[rng.IntN(len(base62))])
	}
	return string(b)
}

func randomHex(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return hex.EncodeToString(b)
}

func uuid(rng *rand.Rand) string {
	h := randomHex(rng, 16)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}
