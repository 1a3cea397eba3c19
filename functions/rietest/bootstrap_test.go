package rietest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approval/approvaltest"
	"github.com/wardenhq/warden/shared/approvaltask"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/cloud"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/approvalstore"
	"github.com/wardenhq/warden/shared/dynamo/dynamotest"
	"github.com/wardenhq/warden/shared/dynamo/identitystore"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/s3store"
	"github.com/wardenhq/warden/shared/s3store/s3test"
	"github.com/wardenhq/warden/shared/slackapp"
	"github.com/wardenhq/warden/shared/slackapp/slackevent"
	"github.com/wardenhq/warden/shared/stepfn/stepfntest"
)

// The bootstraps are built once per test process, into a directory that
// TestMain removes.
var (
	buildRoot string
	builds    sync.Map // goarch -> *buildResult
)

type buildResult struct {
	once       sync.Once
	bootstraps map[string]string
	err        error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warden-rietest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "rietest:", err)
		os.Exit(1)
	}
	buildRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bootstraps builds the functions for goarch (once) and returns them by
// name.
func bootstraps(t testing.TB, goarch string) map[string]string {
	t.Helper()
	v, _ := builds.LoadOrStore(goarch, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		start := time.Now()
		b.bootstraps, b.err = Build(filepath.Join(buildRoot, goarch), goarch)
		t.Logf("make functions (GOARCH=%s): %v", goarch, time.Since(start).Round(time.Millisecond))
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bootstraps
}

func tools(t testing.TB) Tools {
	t.Helper()
	tl, err := Install()
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

const secretsPrefix = "warden/rietest/"

// approvalsMachine is the approvals state machine's ARN (its stand-in's).
const approvalsMachine = "arn:aws:states:us-east-1:123456789012:stateMachine:Warden-test-Approvals"

// slackSigningSecret is the Slack app's, which signs its requests.
const slackSigningSecret = "rietest-slack-signing-secret-0123456789"

// webhookKey signs the notifier's webhook deliveries.
const webhookKey = "whsec-rietest-0123456789abcdef"

// sizes are each function's memory size (MB) and timeout (seconds) in
// the stack (infra/stack.go), which the emulator applies, reports and
// hands to the function.
var sizes = map[string]struct{ memoryMB, timeout string }{
	"api":       {"512", "29"},
	"llm":       {"1024", "900"},
	"archiver":  {"512", "300"},
	"notifier":  {"256", "120"},
	"slack":     {"256", "10"},
	"approvals": {"256", "30"},
	"ingest":    {"256", "30"},
}

// deployment is what a function's stack gives it, on emulators: the
// tables on minidyn, the buckets on versitygw, the secrets on the stand-in,
// and the environment that names them.
type deployment struct {
	function string
	dynamo   *dynamodb.Client
	tables   dynamo.Tables
	s3       *s3.Client
	bucket   string // the policy bucket, or the archive bucket
	secrets  *SecretsManager
	sfn      *stepfntest.Server // Step Functions, for api, llm, slack and approvals
	values   []string           // the secrets' values, which no output may show
	env      map[string]string
}

func newDeployment(t testing.TB, function string) *deployment {
	t.Helper()
	ctx := context.Background()
	d := &deployment{function: function}

	dynamoURL := dynamotest.Start(t)
	d.dynamo = dynamotest.NewClient(dynamoURL)
	d.tables = dynamo.Tables{Identity: "Warden-test-IdentityTable", Audit: "Warden-test-AuditTable", Budget: "Warden-test-BudgetTable", Outbox: "Warden-test-OutboxTable"}
	if err := dynamo.CreateTables(ctx, d.dynamo, d.tables); err != nil {
		t.Fatal(err)
	}

	srv := s3test.Start(t)
	cfg := srv.Config()
	d.s3 = s3.NewFromConfig(cfg, srv.Options)
	// The function signs every request with versitygw's credentials: the
	// only ones it accepts.
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}

	signingKey := randomHex(24) // 48 characters
	secrets := map[string]string{secretsPrefix + awsconfig.SigningKeySecret: signingKey}
	d.values = []string{signingKey, creds.SecretAccessKey}
	switch function {
	case "notifier":
		// The webhook signing key the sample's channel names.
		secrets = map[string]string{secretsPrefix + "ops-hook-key": webhookKey}
		d.values = []string{webhookKey, creds.SecretAccessKey}
	case "slack":
		secrets = map[string]string{secretsPrefix + slackapp.SigningSecret: slackSigningSecret, secretsPrefix + slackapp.BotToken: "xoxb-rietest"}
		d.values = []string{slackSigningSecret, creds.SecretAccessKey}
	case "api", "llm":
		for _, name := range []string{cloud.SecretName("ANTHROPIC_API_KEY"), cloud.SecretName("OPENAI_API_KEY")} {
			v := "sk-rietest-" + name + "-" + randomHex(8)
			secrets[secretsPrefix+name] = v
			d.values = append(d.values, v)
		}
	}
	d.secrets = NewSecretsManager(t, creds.AccessKeyID, s3test.Region, secrets)

	home := t.TempDir()
	d.env = map[string]string{
		"HOME":                             home,
		"AWS_REGION":                       s3test.Region,
		"AWS_ACCESS_KEY_ID":                creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            creds.SecretAccessKey,
		"AWS_ENDPOINT_URL_DYNAMODB":        dynamoURL,
		"AWS_ENDPOINT_URL_S3":              srv.URL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": d.secrets.URL,
		// No shared configuration files, no instance metadata: the
		// environment is the whole configuration.
		"AWS_CONFIG_FILE":             filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "no-aws-credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_LAMBDA_FUNCTION_NAME":    "Warden-test-" + function,
		// The archiver names its lease holder by its log stream.
		"AWS_LAMBDA_LOG_STREAM_NAME":      "2026/11/26/[$LATEST]rietest" + randomHex(4),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": sizes[function].memoryMB,
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     sizes[function].timeout,
		awsconfig.EnvStage:                "test",
		awsconfig.EnvSecretsPrefix:        secretsPrefix,
	}
	if function != "archiver" && function != "notifier" && function != "ingest" {
		d.sfn = stepfntest.NewFor(t, creds.AccessKeyID, creds.SecretAccessKey, s3test.Region)
		d.env["AWS_ENDPOINT_URL_SFN"] = d.sfn.URL
		d.env[awsconfig.EnvApprovalsStateMachine] = approvalsMachine
	}
	switch function {
	case "notifier":
		// The outbox's stream images hold all it sends; the approvals,
		// whose Slack messages it keeps and updates, are in the identity
		// table.
		d.env[awsconfig.EnvIdentityTable] = d.tables.Identity
	case "approvals", "ingest", "slack":
		d.env[awsconfig.EnvIdentityTable] = d.tables.Identity
		d.env[awsconfig.EnvAuditTable] = d.tables.Audit
	case "archiver":
		d.env[awsconfig.EnvAuditTable] = d.tables.Audit
		d.bucket = srv.Bucket(t, true)
		if _, err := d.s3.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: aws.String(d.bucket),
			ObjectLockConfiguration: &s3types.ObjectLockConfiguration{ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
				Rule: &s3types.ObjectLockRule{DefaultRetention: &s3types.DefaultRetention{
					Mode: s3types.ObjectLockRetentionModeCompliance, Days: aws.Int32(1)}}}}); err != nil {
			t.Fatal(err)
		}
		d.env[awsconfig.EnvArchiveBucket] = d.bucket
	default:
		d.bucket = srv.Bucket(t, false)
		policy, err := os.ReadFile(filepath.Join(ModuleRoot(), "policy", "examples", "policy.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(awsconfig.PolicyKey),
			Body: bytes.NewReader(policy)}); err != nil {
			t.Fatal(err)
		}
		d.env[awsconfig.EnvIdentityTable] = d.tables.Identity
		d.env[awsconfig.EnvAuditTable] = d.tables.Audit
		d.env[awsconfig.EnvBudgetTable] = d.tables.Budget
		d.env[awsconfig.EnvOutboxTable] = d.tables.Outbox
		d.env[awsconfig.EnvPolicyBucket] = d.bucket
		// The broker's and the revocations' role; STS and IAM are called
		// only when a session asks or is stopped.
		d.env[awsconfig.EnvRuntimeRole] = "arn:aws:iam::123456789012:role/Warden-test-AgentRuntime"
		if function == "api" {
			// The admin API serves the audit archive: one published key.
			archive := srv.Bucket(t, true)
			a, err := s3store.NewArchive(d.s3, archive, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Create(ctx, "keys/k1.json", []byte(`{"key":"k1"}`)); err != nil {
				t.Fatal(err)
			}
			d.env[awsconfig.EnvArchiveBucket] = archive
		}
	}
	return d
}

// environ is the environment as KEY=value lines, sorted.
func (d *deployment) environ() []string {
	var env []string
	for k, v := range d.env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// start runs the function's arm64 bootstrap under the emulator.
func (d *deployment) start(t testing.TB) *Function {
	t.Helper()
	bootstrap, ok := bootstraps(t, "arm64")[d.function]
	if !ok {
		t.Fatalf("make functions built no %s", d.function)
	}
	f := Start(t, tools(t), bootstrap, d.environ())
	t.Cleanup(func() { d.checkOutput(t, f) })
	return f
}

// checkOutput fails the test if the function or the emulator printed a
// secret.
func (d *deployment) checkOutput(t testing.TB, f *Function) {
	out := f.Output()
	for _, v := range d.values {
		if strings.Contains(out, v) {
			t.Errorf("%s: the output shows a secret value (%s…)", d.function, v[:6])
		}
	}
}

// pendingApproval opens an approval in the deployment's identity table,
// through the approval service the functions run.
func (d *deployment) pendingApproval(t *testing.T) (*approval.Service, approval.Approval) {
	t.Helper()
	db := dynamo.New(d.dynamo, d.tables)
	s := &approval.Service{Store: approvalstore.New(db), Audit: db.Audit()}
	a, _, err := s.Check(t.Context(), approvaltest.Push(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

// event reads a sample event of events/.
func event(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ModuleRoot(), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// invoke invokes f and fails the test unless the emulator answers 200.
func invoke(t *testing.T, f *Function, ev []byte) []byte {
	t.Helper()
	status, body, err := f.Invoke(t.Context(), ev)
	if err != nil || status != 200 {
		t.Fatalf("invoke: %d %s, %v; emulator output:\n%s", status, body, err, f.Output())
	}
	return body
}

// logInit logs the cold init the emulator measured and the bootstrap's
// size.
func logInit(t *testing.T, d *deployment, f *Function) {
	t.Helper()
	init, err := f.InitDuration()
	if err != nil {
		t.Fatalf("%v:\n%s", err, f.Output())
	}
	fi, err := os.Stat(bootstraps(t, "arm64")[d.function])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: bootstrap %d bytes; cold init under the emulator (arm64%s): %v", d.function, fi.Size(),
		map[bool]string{true: " on qemu", false: ""}[tools(t).QEMU != ""], init.Round(10*time.Microsecond))
}

// TestBootstraps starts each function's bootstrap under the Lambda Runtime
// Interface Emulator, over emulators of the services its initialization
// reads, and invokes it with sample events of events/.
func TestBootstraps(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T, d *deployment, f *Function){
		// The admin API: a project created by an IAM-signed request is
		// listed by the next one.
		"api": func(t *testing.T, d *deployment, f *Function) {
			created := proxyResponse(t, invoke(t, f, event(t, "api/admin-create-project.json")))
			if created.StatusCode != 201 {
				t.Fatalf("create project: %+v", created)
			}
			listed := proxyResponse(t, invoke(t, f, event(t, "api/admin-list-projects.json")))
			var projects []struct{ Name string }
			if listed.StatusCode != 200 || json.Unmarshal([]byte(listed.Body), &projects) != nil {
				t.Fatalf("list projects: %+v; want 200 and a JSON list", listed)
			}
			if !slices.ContainsFunc(projects, func(p struct{ Name string }) bool { return p.Name == "web" }) {
				t.Errorf("list projects: %s; want the project web created before", listed.Body)
			}
			// The archive bucket, listed with a signed GET (no S3 client).
			keys := proxyResponse(t, invoke(t, f, event(t, "api/admin-archive-keys.json")))
			if keys.StatusCode != 200 || strings.TrimSpace(keys.Body) != `{"keys":["keys/k1.json"]}` {
				t.Errorf("archive keys: %d %s; want the one published key", keys.StatusCode, keys.Body)
			}
		},
		// The LLM gateway refuses a provider's key in place of a Warden
		// token, in Anthropic's error format, through the response stream.
		"llm": func(t *testing.T, d *deployment, f *Function) {
			raw := invoke(t, f, event(t, "llm/messages-foreign-key.json"))
			prelude, body, ok := bytes.Cut(raw, make([]byte, 8))
			var head struct {
				StatusCode int               `json:"statusCode"`
				Headers    map[string]string `json:"headers"`
			}
			if !ok || json.Unmarshal(prelude, &head) != nil {
				t.Fatalf("answer %q: want the stream's JSON prelude, eight zero bytes, then the body", raw)
			}
			var refusal struct {
				Type  string `json:"type"`
				Error struct{ Type, Message string }
			}
			if head.StatusCode != 401 || json.Unmarshal(body, &refusal) != nil || refusal.Type != "error" || refusal.Error.Type != "authentication_error" {
				t.Errorf("answer %d %s; want 401 and an Anthropic authentication_error", head.StatusCode, body)
			}
			if bytes.Contains(raw, []byte("sk-ant-api03")) {
				t.Errorf("the refusal echoes the caller's key: %s", raw)
			}
		},
		// The archiver sequences the records a stream batch reports and
		// archives them, signed, in the Object Lock bucket.
		"archiver": func(t *testing.T, d *deployment, f *Function) {
			ctx := t.Context()
			ev := event(t, "archiver/stream-batch.json")
			want := d.inserted(t, ev)
			// No failure: batchItemFailures null or [] (Lambda reads both
			// as "all records processed").
			var resp map[string][]events.DynamoDBBatchItemFailure
			if raw := invoke(t, f, ev); json.Unmarshal(raw, &resp) != nil || !slices.Equal(slices.Collect(maps.Keys(resp)), []string{"batchItemFailures"}) ||
				len(resp["batchItemFailures"]) != 0 {
				t.Fatalf("answer %s; want an empty batchItemFailures", raw)
			}
			trail := dynamo.New(d.dynamo, d.tables).Audit()
			if latest, err := trail.Latest(ctx); err != nil || latest != int64(want) {
				t.Errorf("the trail holds %d records, %v; want the %d the batch appended, sequenced", latest, err, want)
			}
			archive, err := s3store.NewArchive(d.s3, d.bucket, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := archive.List(ctx, "keys/")
			if err != nil || len(keys) != 1 {
				t.Fatalf("published keys %q, %v; want one", keys, err)
			}
			pub, err := audit.ArchiveKey(ctx, archive, strings.TrimSuffix(strings.TrimPrefix(keys[0], "keys/"), ".json"))
			if err != nil {
				t.Fatal(err)
			}
			if rep, err := audit.VerifyArchive(ctx, archive, pub, nil); err != nil || !rep.OK || rep.Records != int64(want) {
				t.Errorf("VerifyArchive = %+v, %v; want %d records", rep, err, want)
			}
			objects, err := archive.List(ctx, "records/")
			if err != nil || len(objects) == 0 {
				t.Fatalf("archived records %q, %v", objects, err)
			}
			head, err := d.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(objects[0])})
			if err != nil || head.ObjectLockMode != s3types.ObjectLockModeCompliance {
				t.Errorf("%s: lock mode %+v, %v; want COMPLIANCE", objects[0], head, err)
			}
		},
		// The approvals function's wait task, for an approval decided
		// before the task began, answers the task at once (a signed call
		// to the Step Functions stand-in); its expire task expires a
		// pending one.
		"approvals": func(t *testing.T, d *deployment, f *Function) {
			ctx := t.Context()
			s, a := d.pendingApproval(t)
			if _, err := s.Decide(ctx, a.ID, approval.Decision{Approve: true, By: approvaltest.Lead}); err != nil {
				t.Fatal(err)
			}
			token := d.sfn.Token(a.ID)
			ev, _ := json.Marshal(approvaltask.Event{Step: approvaltask.StepWait, Approval: a.ID, TaskToken: token})
			invoke(t, f, ev)
			if answers := d.sfn.Answers(); len(answers) != 1 || answers[0].TaskToken != token ||
				answers[0].Output != `{"state":"approved","by":"`+approvaltest.Lead+`"}` {
				t.Errorf("task answers %+v", answers)
			}
			other := approvaltest.Push(t)
			other.Session = "s2"
			b, _, err := s.Check(ctx, other)
			if err != nil {
				t.Fatal(err)
			}
			ev, _ = json.Marshal(approvaltask.Event{Step: approvaltask.StepExpire, Approval: b.ID})
			invoke(t, f, ev)
			if got, err := s.Store.Get(ctx, b.ID); err != nil || got.State != approval.Expired {
				t.Errorf("after the expire task: %+v, %v", got, err)
			}
		},
		// The ingest function appends a CloudTrail call of the runtime
		// role's credentials to the audit trail, under the session that
		// made it.
		"ingest": func(t *testing.T, d *deployment, f *Function) {
			ctx := t.Context()
			db := dynamo.New(d.dynamo, d.tables)
			const session = "0f1e2d3c4b5a69788796a5b4" // the sample's source identity
			if err := identitystore.New(db).CreateSession(ctx, identity.Session{ID: session, Project: "data", Agent: "loader",
				CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if raw := invoke(t, f, event(t, "ingest/s3-getobject.json")); string(raw) != "null" {
				t.Errorf("answer %s", raw)
			}
			var got []string
			for _, r := range dynamotest.Appended(t, db) {
				got = append(got, fmt.Sprintf("%s %s/%s %s %s %s", r.Code, r.Project, r.Agent, r.Session, r.Action, r.Status))
			}
			if want := []string{"aws.call data/loader " + session + " s3:GetObject ok"}; !slices.Equal(got, want) {
				t.Errorf("audit %q, want %q", got, want)
			}
		},
		// The slack function takes a signed click on an approval's
		// Approve button and approves it, as the clicking release manager.
		"slack": func(t *testing.T, d *deployment, f *Function) {
			ctx := t.Context()
			s, a := d.pendingApproval(t)
			replied := make(chan string, 1)
			responses := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				replied <- string(body)
			}))
			t.Cleanup(responses.Close)
			ev, err := slackevent.Fill(event(t, "slack/click-approve.json"), map[string]string{"user": approvaltest.Lead,
				"approval": a.ID, "response_url": responses.URL}, slackSigningSecret, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(ev)
			if resp := proxyResponse(t, invoke(t, f, raw)); resp.StatusCode != 200 {
				t.Fatalf("click: %+v", resp)
			}
			if got, err := s.Store.Get(ctx, a.ID); err != nil || got.State != approval.Approved || got.DecidedBy != approvaltest.Lead {
				t.Errorf("approval %+v, %v; want approved by %s", got, err, approvaltest.Lead)
			}
			select {
			case body := <-replied:
				if !strings.Contains(body, "Approved once by") {
					t.Errorf("reply %s", body)
				}
			default:
				t.Error("the clicked message was not answered")
			}
		},
		// The notifier sends the messages of an outbox stream batch to
		// their webhook, signed with the key from Secrets Manager.
		"notifier": func(t *testing.T, d *deployment, f *Function) {
			got := make(chan string, 4)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				err := notify.Verify(webhookKey, r.Header.Get(notify.TimestampHeader), r.Header.Get(notify.SignatureHeader), body, time.Now(), time.Minute)
				got <- fmt.Sprintf("%s %v", r.Header.Get(notify.EventHeader), err)
			}))
			t.Cleanup(hook.Close)
			ev := bytes.ReplaceAll(event(t, "notifier/stream-batch.json"), []byte("{{webhook_url}}"), []byte(hook.URL))
			var resp map[string][]events.DynamoDBBatchItemFailure
			if raw := invoke(t, f, ev); json.Unmarshal(raw, &resp) != nil || len(resp["batchItemFailures"]) != 0 {
				t.Fatalf("answer %s; want no batchItemFailures", raw)
			}
			var sent []string
			for range 2 {
				select {
				case s := <-got:
					sent = append(sent, s)
				default:
				}
			}
			slices.Sort(sent)
			if want := []string{"budget.alert <nil>", "watchdog.paused <nil>"}; !slices.Equal(sent, want) {
				t.Errorf("the webhook got %q; want %q, each signed", sent, want)
			}

			// The approvals state machine's outcome step, for an approval
			// in the identity table (decided; posted nowhere, so nothing
			// to update).
			ctx := t.Context()
			s, a := d.pendingApproval(t)
			_, err := s.Decide(ctx, a.ID, approval.Decision{By: approvaltest.Lead})
			if err != nil {
				t.Fatal(err)
			}
			step := bytes.ReplaceAll(event(t, "notifier/approval-outcome.json"), []byte("APR-QX5VZ2M3T7K4B6NZ"), []byte(a.ID))
			if raw := invoke(t, f, step); string(raw) != "null" {
				t.Errorf("the outcome step answered %s", raw)
			}
		},
	}
	for _, name := range slices.Sorted(maps.Keys(bootstraps(t, "arm64"))) {
		if _, ok := cases[name]; !ok {
			t.Errorf("functions/%s is built by make functions but not run under the emulator here", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newDeployment(t, name)
			f := d.start(t)
			cases[name](t, d, f)
			logInit(t, d, f)
			if !strings.Contains(f.Output(), "INIT RTDONE(status: success)") {
				t.Errorf("no successful init in the emulator's output:\n%s", f.Output())
			}
			want := secretsPrefix + map[string]string{"notifier": "ops-hook-key", "slack": slackapp.SigningSecret}[name]
			if want == secretsPrefix {
				want += awsconfig.SigningKeySecret
			}
			// The approvals and ingest functions read no secret.
			if got := d.secrets.Asked(); name != "approvals" && name != "ingest" && !slices.Contains(got, want) {
				t.Errorf("secrets asked for: %q; want %s among them", got, want)
			}
		})
	}
}

// proxyResponse decodes the api function's answer.
func proxyResponse(t *testing.T, raw []byte) events.APIGatewayProxyResponse {
	t.Helper()
	var r events.APIGatewayProxyResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return r
}

// inserted writes the items whose INSERTs a stream event reports, as the
// api and llm functions' Append did before the stream carried them, and
// returns how many distinct records they are.
func (d *deployment) inserted(t *testing.T, raw []byte) int {
	t.Helper()
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, er := range ev.Records {
		img := er.Change.NewImage
		if er.EventName != "INSERT" || img["record"].DataType() != events.DataTypeString {
			continue
		}
		item := map[string]dtypes.AttributeValue{}
		for name, v := range img {
			item[name] = &dtypes.AttributeValueMemberS{Value: v.String()}
		}
		if _, err := d.dynamo.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(d.tables.Audit), Item: item}); err != nil {
			t.Fatal(err)
		}
		ids[img[awsconfig.AttrPK].String()] = true
	}
	return len(ids)
}

// TestMisconfigured: a function that cannot start refuses every
// invocation, and the emulator's output (the function's log on Lambda)
// says why, naming what is missing.
func TestMisconfigured(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, function string
		breakIt        func(t *testing.T, d *deployment)
		want           string
	}{
		{"api without its policy bucket", "api", func(t *testing.T, d *deployment) {
			delete(d.env, awsconfig.EnvPolicyBucket)
		}, "missing configuration (set by the CDK stack): " + awsconfig.EnvPolicyBucket},
		{"llm without the signing secret", "llm", func(t *testing.T, d *deployment) {
			d.env[awsconfig.EnvSecretsPrefix] = "warden/other-stage/"
		}, "read the audit signing secret " + awsconfig.SigningKeySecret},
		{"archiver on a bucket whose default retention is not COMPLIANCE", "archiver", func(t *testing.T, d *deployment) {
			if _, err := d.s3.PutObjectLockConfiguration(t.Context(), &s3.PutObjectLockConfigurationInput{Bucket: aws.String(d.bucket),
				ObjectLockConfiguration: &s3types.ObjectLockConfiguration{ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
					Rule: &s3types.ObjectLockRule{DefaultRetention: &s3types.DefaultRetention{
						Mode: s3types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1)}}}}); err != nil {
				t.Fatal(err)
			}
		}, `default retention mode is "GOVERNANCE", not COMPLIANCE`},
		{"notifier without its secrets prefix", "notifier", func(t *testing.T, d *deployment) {
			delete(d.env, awsconfig.EnvSecretsPrefix)
		}, "missing configuration (set by the CDK stack): " + awsconfig.EnvSecretsPrefix},
		{"approvals without the audit table", "approvals", func(t *testing.T, d *deployment) {
			delete(d.env, awsconfig.EnvAuditTable)
		}, "missing configuration (set by the CDK stack): " + awsconfig.EnvAuditTable},
		{"slack without the identity table", "slack", func(t *testing.T, d *deployment) {
			delete(d.env, awsconfig.EnvIdentityTable)
		}, "missing configuration (set by the CDK stack): " + awsconfig.EnvIdentityTable},
		{"ingest without the audit table", "ingest", func(t *testing.T, d *deployment) {
			delete(d.env, awsconfig.EnvAuditTable)
		}, "missing configuration (set by the CDK stack): " + awsconfig.EnvAuditTable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDeployment(t, tt.function)
			tt.breakIt(t, d)
			f := d.start(t)
			var ev []byte
			switch tt.function {
			case "api":
				ev = event(t, "api/admin-list-projects.json")
			case "llm":
				ev = event(t, "llm/messages-foreign-key.json")
			case "notifier":
				ev = event(t, "notifier/stream-batch.json")
			case "slack":
				ev = event(t, "slack/click-approve.json")
			case "approvals":
				ev = event(t, "approvals/wait.json")
			case "ingest":
				ev = event(t, "ingest/s3-getobject.json")
			default:
				ev = event(t, "archiver/stream-batch.json")
			}
			for i := range 2 { // and again: a broken function stays refused
				status, body, err := f.Invoke(t.Context(), ev)
				if err != nil || status != 502 {
					t.Fatalf("invocation %d: %d %s, %v; want 502 (the function failed)", i+1, status, body, err)
				}
			}
			out := f.Output()
			if !strings.Contains(out, tt.want) {
				t.Errorf("the output does not say %q:\n%s", tt.want, out)
			}
			if !strings.Contains(out, "INIT RTDONE(status: error)") {
				t.Errorf("the emulator did not see the init fail:\n%s", out)
			}
		})
	}
}

// BenchmarkColdStart starts each function cold under the emulator, b.N
// times, and reports the median of the init durations the emulator
// measured (init-ms) and the bootstrap's size (bytes): for the arm64
// bootstraps that Lambda runs (under QEMU on another machine, which
// inflates the time) and, on an amd64 machine, for the same recipe built
// for amd64. Run it with a fixed count: -bench ColdStart -benchtime 10x.
func BenchmarkColdStart(b *testing.B) {
	archs := []string{"arm64"}
	if runtime.GOARCH != "arm64" {
		archs = append(archs, runtime.GOARCH)
	}
	for _, arch := range archs {
		for _, name := range []string{"api", "llm", "archiver", "notifier", "slack", "approvals", "ingest"} {
			b.Run(arch+"/"+name, func(b *testing.B) {
				bootstrap := bootstraps(b, arch)[name]
				fi, err := os.Stat(bootstrap)
				if err != nil {
					b.Fatal(err)
				}
				d := newDeployment(b, name)
				tl := tools(b)
				if arch != "arm64" {
					tl.QEMU = ""
				}
				ev := event(b, map[string]string{"api": "api/admin-list-projects.json",
					"llm": "llm/messages-foreign-key.json", "archiver": "archiver/stream-batch.json",
					"notifier": "notifier/stream-batch.json", "slack": "slack/click-approve.json", "approvals": "approvals/wait.json",
					"ingest": "ingest/s3-getobject.json"}[name])
				var inits []time.Duration
				b.ResetTimer()
				for range b.N {
					f := Start(b, tl, bootstrap, d.environ())
					status, body, err := f.Invoke(context.Background(), ev)
					if err != nil || status != 200 {
						b.Fatalf("invoke: %d %s, %v:\n%s", status, body, err, f.Output())
					}
					init, err := f.InitDuration()
					if err != nil {
						b.Fatal(err)
					}
					inits = append(inits, init)
					f.stop()
				}
				b.ReportMetric(float64(median(inits))/float64(time.Millisecond), "init-ms")
				b.ReportMetric(float64(inits[0])/float64(time.Millisecond), "min-init-ms")
				b.ReportMetric(float64(fi.Size()), "bytes")
			})
		}
	}
}

// median is the median of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return hex.EncodeToString(b)
}
