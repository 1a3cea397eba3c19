package cloud

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approvaltask"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsiam"
	"github.com/wardenhq/warden/shared/awsquery/awstest"
	"github.com/wardenhq/warden/shared/awssts"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/dynamo/identitystore"
	"github.com/wardenhq/warden/shared/e2e"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/lambdas/notifier"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/secret"
	"github.com/wardenhq/warden/shared/stepfn"
	"github.com/wardenhq/warden/shared/stepfn/stepfntest"
)

const testPolicy = `version: 1
rules:
  - {id: models, effect: allow, who: {project: web}, action: llm:invoke, resource: "anthropic/claude-*"}
  - {id: shell, effect: allow, who: {project: web}, action: tool:Bash, command: "*"}
  - {id: no-main-push, effect: deny, action: tool:Bash, command: ["git push * main"]}
budgets:
  - {id: daily, scope: project, period: day, usd: 50}
`

// testApp is the api or llm function's app over a DynamoDB emulator, a
// policy file and a model stand-in holding the provider key.
func testApp(t *testing.T, admin bool, db *dynamo.DB, upstream string) *App {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	llmConfig := fmt.Sprintf("upstreams:\n  anthropic: {api: anthropic, url: %q, key_env: ANTHROPIC_API_KEY}\nroutes:\n  - {model: \"claude-*\", upstream: anthropic}\n", upstream)
	o := Options{DB: db, Policy: policyload.File(path), LLMConfig: []byte(llmConfig), Admin: admin,
		Secrets: secret.Map{"audit-signing-key": strings.Repeat("k", 40), "anthropic-api-key": "sk-ant-test-provider-key"},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil))}
	if admin {
		// An archive holding one published key, as the archiver leaves it.
		archive := audit.DirStore{Root: t.TempDir()}
		if err := archive.Create(t.Context(), "keys/k1.json", []byte(`{"key":"k1"}`)); err != nil {
			t.Fatal(err)
		}
		o.Archive = archive
	}
	app, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func newDB(t *testing.T) *dynamo.DB { return dynamotest.DB(t, dynamotest.Client(t)) }

// sample reads an event of events/, with its placeholders filled in.
func sample(t *testing.T, name string, vars map[string]string) *events.APIGatewayProxyRequest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &ev
}

// TestFunctionEvents runs every sample event of the api and llm functions
// through their handlers, in an order that builds on itself: a project is
// created by an IAM-signed admin request, an agent logs in with its
// enrollment key, its hooks are decided, and its model calls reach the
// provider with the provider's key and are metered.
func TestFunctionEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := newDB(t)
	stub := e2e.NewModelStub(t, []e2e.Step{e2e.Say("Hello.")})
	api := lambdas.Buffered(testApp(t, true, db, stub.URL()).Handler())
	llm := lambdas.Streaming(testApp(t, false, db, stub.URL()).Handler())

	want := map[string]int{} // every sample must be listed here
	vars := map[string]string{}
	callAPI := func(name string, status int) map[string]any {
		t.Helper()
		want[name] = status
		resp, err := api(ctx, sample(t, name, vars))
		if err != nil || resp.StatusCode != status {
			t.Fatalf("%s: %d %s, %v; want %d", name, resp.StatusCode, resp.Body, err, status)
		}
		var body map[string]any
		json.Unmarshal([]byte(resp.Body), &body)
		return body
	}
	callLLM := func(name string, status int) string {
		t.Helper()
		want[name] = status
		resp, err := llm(ctx, sample(t, name, vars))
		if err != nil || resp.StatusCode != status {
			t.Fatalf("%s: %+v, %v; want %d", name, resp, err, status)
		}
		// The stream as the runtime reads it: prelude, eight zero bytes, body.
		br := bufio.NewReader(resp)
		if _, err := br.ReadBytes(0); err != nil {
			t.Fatal(err)
		}
		br.Discard(7)
		body, _ := io.ReadAll(br)
		return string(body)
	}

	created := callAPI("api/admin-create-project.json", http.StatusCreated)
	vars["enroll_key"], _ = created["enroll_key"].(string)
	if vars["enroll_key"] == "" {
		t.Fatalf("no enrollment key in %v", created)
	}
	callAPI("api/admin-list-projects.json", http.StatusOK)
	callAPI("api/admin-without-iam.json", http.StatusUnauthorized)
	if keys := callAPI("api/admin-archive-keys.json", http.StatusOK); fmt.Sprint(keys["keys"]) != "[keys/k1.json]" {
		t.Errorf("archive keys: %v", keys)
	}
	login := callAPI("api/agent-login.json", http.StatusCreated)
	vars["session_token"], _ = login["token"].(string)
	if !strings.HasPrefix(vars["session_token"], "wdn_s_") {
		t.Fatalf("login answered %v", login)
	}
	allowed := callAPI("api/pre-tool-use-allowed.json", http.StatusOK)
	denied := callAPI("api/pre-tool-use-denied.json", http.StatusOK)
	if decision(allowed) != "allow" || decision(denied) != "deny" {
		t.Errorf("hook decisions: %v / %v", allowed, denied)
	}

	if body := callLLM("llm/messages.json", http.StatusOK); !strings.Contains(body, `"stop_reason":"end_turn"`) {
		t.Errorf("messages: %s", body)
	}
	if body := callLLM("llm/messages-stream.json", http.StatusOK); !strings.Contains(body, "event: message_stop") {
		t.Errorf("streamed messages: %s", body)
	}
	if body := callLLM("llm/messages-foreign-key.json", http.StatusUnauthorized); strings.Contains(body, "sk-ant-api03") {
		t.Errorf("the refusal echoes the key: %s", body)
	}
	for _, call := range stub.ModelCalls() {
		if got := call.Header.Get("X-Api-Key"); got != "sk-ant-test-provider-key" {
			t.Errorf("the provider got key %q, want the one from Secrets Manager", got)
		}
	}
	if n := len(stub.ModelCalls()); n != 2 {
		t.Errorf("%d calls reached the provider, want 2 (the foreign key's none)", n)
	}

	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "*", "*.json"))
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join("..", "..", "events"), f)
		// The other functions' samples run in their handlers' packages
		// (shared/lambdas, shared/lambdas/notifier, shared/slackapp,
		// shared/approvaltask, shared/lambdas/ingest).
		stream := strings.HasPrefix(rel, "archiver") || strings.HasPrefix(rel, "notifier") || strings.HasPrefix(rel, "slack") ||
			strings.HasPrefix(rel, "approvals") || strings.HasPrefix(rel, "ingest") ||
			rel == filepath.Join("api", "aws-credentials.json") || // TestBrokerOnAWS
			rel == filepath.Join("llm", "git-info-refs.json") // TestGitOnAWS
		if _, ok := want[filepath.ToSlash(rel)]; !ok && !stream {
			t.Errorf("sample %s is not run by any test", rel)
		}
	}

	// What the trail holds: the admin's change by its IAM principal, the
	// decisions, and the usage of both model calls. The archiver sequences
	// them from the table's stream, which the emulator has not: read the
	// items as appended.
	recs := dynamotest.Appended(t, db)
	var usage, actor int
	for _, r := range recs {
		if r.Code == audit.LLMUsage {
			usage++
		}
		if r.Code == audit.ProjectCreated && strings.HasPrefix(r.Actor, "arn:aws:sts::123456789012:assumed-role/platform-admin/alice") {
			actor++
		}
	}
	if usage != 2 || actor != 1 {
		t.Errorf("trail: %d llm.usage records (want 2), project created by the IAM principal: %d (want 1)", usage, actor)
	}
}

func decision(hook map[string]any) string {
	out, _ := hook["hookSpecificOutput"].(map[string]any)
	d, _ := out["permissionDecision"].(string)
	return d
}

// TestBudgetAlertMetric: a budget alert reached by a model call is in the
// outbox when the invocation returns, and the notifier function's handler
// sends it to its channel; it also goes out as the BudgetAlerts metric
// (embedded metric format) the stack's alarm watches.
func TestBudgetAlertMetric(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hooked := make(chan string, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hooked <- string(body)
	}))
	t.Cleanup(hook.Close)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	policyText := testPolicy + "  - {id: tiny, scope: project, period: day, tokens: 5000, alerts: [1], notify: [ops]}\n" +
		fmt.Sprintf("notifications:\n  ops: {type: webhook, url: %q}\n", hook.URL)
	if err := os.WriteFile(policyFile, []byte(policyText), 0o600); err != nil {
		t.Fatal(err)
	}
	db := newDB(t)
	stub := e2e.NewModelStub(t, []e2e.Step{e2e.Say("Hello.")})
	var metrics strings.Builder
	m := &lambdas.Metrics{Stage: "test", Out: &metrics}
	llmConfig := fmt.Sprintf("upstreams:\n  anthropic: {api: anthropic, url: %q, key_env: ANTHROPIC_API_KEY}\nroutes:\n  - {model: \"claude-*\", upstream: anthropic}\n", stub.URL())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := New(ctx, Options{DB: db, Policy: policyload.File(policyFile), LLMConfig: []byte(llmConfig), Metrics: m,
		Secrets: secret.Map{"audit-signing-key": strings.Repeat("k", 40), "anthropic-api-key": "sk-ant-test-provider-key"},
		Log:     log})
	if err != nil {
		t.Fatal(err)
	}
	token := agentToken(t, app)
	resp, err := lambdas.Streaming(app.Handler())(ctx, sample(t, "llm/messages.json", map[string]string{"session_token": token}))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("model call: %+v, %v", resp, err)
	}
	io.Copy(io.Discard, resp)
	// The stream ends when the handler has returned, the alert in the
	// outbox; the llm function sends nothing itself.
	stream := dynamotest.StreamEvent(t, db.Client(), db.Names().Outbox)
	if len(stream.Records) != 1 {
		t.Fatalf("outbox holds %d items, want the budget alert", len(stream.Records))
	}
	select {
	case body := <-hooked:
		t.Fatalf("the llm function sent %s itself", body)
	default:
	}
	n, err := notify.New(notify.Config{Secrets: secret.Map{}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h := &notifier.Handler{Deliver: n.Deliver, Log: log}
	if _, err := h.Handle(ctx, stream); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-hooked:
		if !strings.Contains(body, "tiny") || !strings.Contains(body, `"event":"budget.alert"`) {
			t.Errorf("the webhook got %s", body)
		}
	default:
		t.Error("the notifier returned before the budget alert was sent")
	}
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Stage        string
		BudgetAlerts int
		Budget       string `json:"budget"`
		Threshold    int    `json:"threshold"`
	}
	if err := json.Unmarshal([]byte(metrics.String()), &line); err != nil {
		t.Fatalf("metric line %q: %v", metrics.String(), err)
	}
	cw := line.AWS.CloudWatchMetrics
	if len(cw) != 1 || cw[0].Namespace != "Warden" || fmt.Sprint(cw[0].Dimensions) != "[[Stage]]" || cw[0].Metrics[0].Name != "BudgetAlerts" ||
		line.Stage != "test" || line.BudgetAlerts != 1 || line.Budget != "tiny" || line.Threshold != 1 {
		t.Errorf("metric line %s", metrics.String())
	}
}

// twoInstances are two apps of the api function on the same tables (as
// two Lambda instances are), with the policy plus extra, and a session
// token of project web.
func twoInstances(t *testing.T, extra string) ([]http.Handler, *identity.Service, string) {
	t.Helper()
	ctx := t.Context()
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(testPolicy+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	db := newDB(t)
	var apps []http.Handler
	for range 2 {
		app, err := New(ctx, Options{DB: db, Policy: policyload.File(policyFile), Admin: true,
			Secrets: secret.Map{"audit-signing-key": strings.Repeat("k", 40)}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		apps = append(apps, app.Handler())
	}
	ids := identity.NewService(identitystore.New(db), nil)
	enroll, err := ids.CreateProject(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := ids.Login(ctx, enroll, "claude", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return apps, ids, token
}

// hookCalls makes n identical PreToolUse calls, on the instances in turn,
// and returns each decision and the last answer (a session that may not
// act any more is answered 403, with a deny).
func hookCalls(t *testing.T, apps []http.Handler, token string, n int) ([]string, string) {
	t.Helper()
	var got []string
	var last string
	for i := range n {
		resp, err := lambdas.Buffered(apps[i%len(apps)])(t.Context(), sample(t, "api/pre-tool-use-allowed.json", map[string]string{"session_token": token}))
		if err != nil || resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden {
			t.Fatalf("call %d: %+v, %v", i+1, resp, err)
		}
		var hook map[string]any
		json.Unmarshal([]byte(resp.Body), &hook)
		got = append(got, decision(hook))
		last = resp.Body
	}
	return got, last
}

// TestRateLimitAcrossInstances: a rate limit holds across function
// instances: calls spread over two apps on the same tables are counted
// together, and the one past the limit is refused by whichever serves it.
func TestRateLimitAcrossInstances(t *testing.T) {
	t.Parallel()
	apps, _, token := twoInstances(t, "rate_limits:\n  - {id: per-session, scope: session, requests: 3, per: 1h}\n")
	got, last := hookCalls(t, apps, token, 4)
	if want := []string{"allow", "allow", "allow", "deny"}; !slices.Equal(got, want) {
		t.Errorf("decisions %q, want %q", got, want)
	}
	if !strings.Contains(last, "rate limit per-session") {
		t.Errorf("call 4 answered %s; want the rate limit named", last)
	}
}

// TestWatchdogAcrossInstances: the watchdog counts a session's calls
// together across instances: the same call, served by two in turn, trips
// the pause at its fourth repeat, and the session is paused for both.
func TestWatchdogAcrossInstances(t *testing.T) {
	t.Parallel()
	apps, ids, token := twoInstances(t, "watchdog: {repeated_calls: {alert: 2, pause: 4}, window: 10m}\n")
	got, last := hookCalls(t, apps, token, 5)
	if want := []string{"allow", "allow", "allow", "deny", "deny"}; !slices.Equal(got, want) {
		t.Errorf("decisions %q, want %q", got, want)
	}
	if !strings.Contains(last, "paused") {
		t.Errorf("call 5 answered %s; want the session paused", last)
	}
	sessions, err := ids.Sessions(t.Context(), "web")
	if err != nil || len(sessions) != 1 || !sessions[0].Paused || sessions[0].PausedBy != "watchdog" {
		t.Errorf("sessions %+v, %v; want the one paused by the watchdog", sessions, err)
	}
}

// TestApprovalsOnStepFunctions: on AWS an approval waits in an execution
// of the approvals state machine (the stand-in): opening it starts one,
// named by the approval, with its timeout; the administrator's decision
// answers the execution's waiting task, whose token the wait step stored.
func TestApprovalsOnStepFunctions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	policyText := strings.Replace(testPolicy, "rules:\n", "rules:\n  - {id: tf-apply, effect: approve, who: {project: web}, action: tool:Bash, command: \"go test*\"}\n", 1) +
		"approvers:\n  ops: {slack: [U012AB3CD], rules: [tf-apply], timeout: 30m}\n"
	if err := os.WriteFile(policyFile, []byte(policyText), 0o600); err != nil {
		t.Fatal(err)
	}
	sfn := stepfntest.New(t)
	tasks := &stepfn.Client{Region: stepfntest.Region, Endpoint: sfn.URL,
		Credentials: credentials.NewStaticCredentialsProvider(stepfntest.AccessKey, stepfntest.SecretKey, "")}
	db := newDB(t)
	const machine = "arn:aws:states:eu-central-1:123456789012:stateMachine:Warden-test-Approvals"
	app, err := New(ctx, Options{DB: db, Policy: policyload.File(policyFile), Admin: true, StateMachine: machine, Tasks: tasks,
		Secrets: secret.Map{"audit-signing-key": strings.Repeat("k", 40)}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	token := agentToken(t, app)
	got, body := hookCalls(t, []http.Handler{app.Handler()}, token, 1)
	id := regexp.MustCompile(`APR-[A-Z2-7]{16}`).FindString(body)
	if got[0] != "deny" || id == "" {
		t.Fatalf("the call that needs approval: %s", body)
	}
	starts := sfn.Starts()
	if len(starts) != 1 || starts[0].StateMachineArn != machine || starts[0].Name != id ||
		starts[0].Input != fmt.Sprintf(`{"approval":%q,"timeout_seconds":1800}`, id) {
		t.Fatalf("executions started: %+v", starts)
	}
	// The state machine's wait step, then the administrator's decision.
	waiting := &approvaltask.Handler{Approvals: app.Server.Approvals, Tasks: tasks}
	taskToken := sfn.Token(id)
	if err := waiting.Handle(ctx, approvaltask.Event{Step: approvaltask.StepWait, Approval: id, TaskToken: taskToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Server.Approvals.Decide(ctx, id, approval.Decision{Approve: true, By: "alice", Admin: true}); err != nil {
		t.Fatal(err)
	}
	if answers := sfn.Answers(); len(answers) != 1 || answers[0].TaskToken != taskToken || answers[0].Output != `{"state":"approved","by":"admin:alice"}` {
		t.Errorf("task answers %+v", answers)
	}
	if got, _ := hookCalls(t, []http.Handler{app.Handler()}, token, 1); got[0] != "allow" {
		t.Errorf("the call once approved: %v", got)
	}
}

// TestBrokerOnAWS: the api function issues a session's AWS credentials
// (events/api/aws-credentials.json) of the runtime role, capped at an hour
// (its own credentials are a role's: role chaining), and a session the
// llm function's watchdog could stop, or an administrator kills, has them
// denied on the runtime role.
func TestBrokerOnAWS(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const region, key, secretKey, role = "eu-central-1", "ASIAAPIFUNCTIONROLE1", "api-function-role-secret-0123456789abcd", "Warden-test-AgentRuntime"
	stand := awstest.New(t, key, secretKey, region)
	roleARN := stand.CreateRole(role, 12*time.Hour)
	creds := credentials.NewStaticCredentialsProvider(key, secretKey, "")
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	pol := strings.Replace(testPolicy, "rules:\n", "rules:\n  - {id: lake, effect: allow, who: {project: web}, action: s3:GetObject, resource: \"arn:aws:s3:::lake/*\"}\n", 1) +
		"aws: {credential_ttl: 2h}\n"
	if err := os.WriteFile(policyFile, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	db := newDB(t)
	app, err := New(ctx, Options{DB: db, Policy: policyload.File(policyFile), Admin: true, RuntimeRole: roleARN,
		STS: &awssts.Client{Region: region, Credentials: creds, Endpoint: stand.URL}, IAM: &awsiam.Client{Credentials: creds, Endpoint: stand.URL},
		Secrets: secret.Map{"audit-signing-key": strings.Repeat("k", 40)}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	enroll, err := app.Server.Identity.CreateProject(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	sess, token, err := app.Server.Identity.Login(ctx, enroll, "claude", nil, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := lambdas.Buffered(app.Handler())(ctx, sample(t, "api/aws-credentials.json", map[string]string{"session_token": token}))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/aws/credentials: %+v, %v", resp, err)
	}
	var c struct {
		Version                                   int
		AccessKeyID                               string `json:"AccessKeyId"`
		SecretAccessKey, SessionToken, Expiration string
	}
	if err := json.Unmarshal([]byte(resp.Body), &c); err != nil || c.Version != 1 || c.AccessKeyID == "" {
		t.Fatalf("answer %s: %v", resp.Body, err)
	}
	issued, ok := stand.Session(c.AccessKeyID)
	if !ok || issued.SourceIdentity != sess.ID || issued.Tags["warden:project"] != "web" || issued.Expiration.Sub(issued.Issued) != time.Hour {
		t.Errorf("issued %+v, want the session's, for an hour (role chaining)", issued)
	}
	if err := app.Server.Identity.KillSession(ctx, sess.ID, "alice", "leaked"); err != nil {
		t.Fatal(err)
	}
	if docs := stand.RolePolicies(role); !strings.Contains(fmt.Sprint(docs), `"aws:SourceIdentity":"`+sess.ID+`"`) {
		t.Errorf("revocations %v", docs)
	}
}

// TestGitOnAWS: with git.yaml in the policy bucket, the llm function
// (streamed) serves the git remote: the ref advertisement of
// events/llm/git-info-refs.json is decided (git:fetch) and fetched from
// the upstream with Warden's credential from Secrets Manager, and streamed
// back.
func TestGitOnAWS(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const advert = "001e# service=git-upload-pack\n0000000eversion 2\n0000"
	var gotAuth string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		gotAuth = user + ":" + pass
		if r.URL.Path != "/acme/web.git/info/refs" || r.URL.Query().Get("service") != "git-upload-pack" || r.Header.Get("Git-Protocol") != "version=2" {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		io.WriteString(w, advert)
	}))
	t.Cleanup(upstream.Close)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(strings.Replace(testPolicy, "rules:\n",
		"rules:\n  - {id: fetch, effect: allow, who: {project: web}, action: git:fetch, resource: \"github.com/acme/*\"}\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := New(ctx, Options{DB: newDB(t), Policy: policyload.File(policyFile),
		GitConfig: []byte("upstreams:\n  github.com: {url: " + upstream.URL + ", username: x-access-token, password_env: GITHUB_TOKEN}\n"),
		Secrets:   secret.Map{"audit-signing-key": strings.Repeat("k", 40), "github-token": "ghp_fromSecretsManager"},
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	token := agentToken(t, app)
	basic := base64.StdEncoding.EncodeToString([]byte("warden:" + token))
	resp, err := lambdas.Streaming(app.Handler())(ctx, sample(t, "llm/git-info-refs.json", map[string]string{"basic_auth": basic}))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("info/refs: %+v, %v", resp, err)
	}
	br := bufio.NewReader(resp)
	if _, err := br.ReadBytes(0); err != nil {
		t.Fatal(err)
	}
	br.Discard(7)
	body, _ := io.ReadAll(br)
	if string(body) != advert || gotAuth != "x-access-token:ghp_fromSecretsManager" {
		t.Errorf("answer %q, upstream credential %q", body, gotAuth)
	}
	if hosts := app.Server.GitHosts; len(hosts) != 1 || hosts[0] != "github.com" {
		t.Errorf("hosts %v", hosts)
	}
}

// agentToken creates project web on app and returns a session token of
// its agent claude.
func agentToken(t *testing.T, app *App) string {
	t.Helper()
	key, err := app.Server.Identity.CreateProject(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := app.Server.Identity.Login(t.Context(), key, "claude", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}
