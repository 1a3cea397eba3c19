package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/policy/iameval"
	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/awsiam"
	"github.com/wardenhq/warden/shared/awsquery/awstest"
	"github.com/wardenhq/warden/shared/awssts"
	"github.com/wardenhq/warden/shared/broker"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/pipeline"
	"github.com/wardenhq/warden/shared/sqlite"
)

const (
	region     = "eu-central-1"
	brokerKey  = "AKIAWARDENBROKER0001"
	brokerPass = "broker-secret-0123456789abcdefghijklmnop"
	roleName   = "Warden-test-AgentRuntime"
)

// The data team's loader may read raw data and write curated data, never
// delete; deleting a raw object needs a lead's approval.
const testPolicy = `version: 1
rules:
  - {id: read-raw, effect: allow, action: "s3:GetObject", resource: "arn:aws:s3:::data-lake/raw/*"}
  - {id: write-curated, effect: allow, action: "s3:PutObject", resource: "arn:aws:s3:::data-lake/curated/*"}
  - {id: no-delete, effect: deny, action: "s3:DeleteObject", resource: "arn:aws:s3:::data-lake/curated/*"}
  - {id: delete-raw, effect: approve, action: "s3:DeleteObject", resource: "arn:aws:s3:::data-lake/raw/*"}
  - {id: tools, effect: allow, action: "tool:*"}
approvers:
  leads: {slack: [U012AB3CD], rules: [delete-raw], timeout: 1h}
aws: {credential_ttl: 30m}
`

type fixture struct {
	aws     *awstest.Server
	role    string
	ids     *identity.Service
	db      *sqlite.DB
	core    pipeline.Assembled
	broker  *broker.Broker
	revoker *broker.Revoker
	token   string
	session identity.Session
}

func newFixture(t *testing.T, pol string) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{aws: awstest.New(t, brokerKey, brokerPass, region)}
	f.role = f.aws.CreateRole(roleName, 12*time.Hour)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	p, err := policy.Load("p.yaml", []byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	// One clock for Warden and AWS (the stand-in's, which tests move on).
	f.ids = identity.NewService(db.Identity(), f.aws.Now)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.core = pipeline.Assemble(pipeline.Parts{Identity: f.ids, Policy: policyload{p}, Ledger: db.Budgets(), Approvals: db.Approvals(),
		Audit: db.Audit(), Notifier: discard{}, RedactionKey: []byte("k"), Log: log})
	creds := credentials.NewStaticCredentialsProvider(brokerKey, brokerPass, "")
	f.broker = &broker.Broker{Pipeline: f.core.Pipeline, RoleARN: f.role, Log: log,
		STS: &awssts.Client{Region: region, Credentials: creds, Endpoint: f.aws.URL}}
	f.revoker = &broker.Revoker{IAM: &awsiam.Client{Credentials: creds, Endpoint: f.aws.URL}, Role: roleName}
	f.ids.Stopped = f.revoker.Stopped
	// The most agents may do: the operator's policy on the runtime role.
	if err := f.revoker.IAM.PutRolePolicy(ctx, roleName, "agent-max",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::data-lake/*"}]}`); err != nil {
		t.Fatal(err)
	}
	key, err := f.ids.CreateProject(ctx, "data")
	if err != nil {
		t.Fatal(err)
	}
	f.session, f.token, err = f.ids.Login(ctx, key, "loader", nil, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type policyload struct{ p *policy.Policy }

func (s policyload) Current() *policy.Policy { return s.p }

type discard struct{}

func (discard) Enqueue([]string, notify.Message) error { return nil }

// assumes are the AssumeRole calls the stand-in took.
func (f *fixture) assumes() []awstest.Call {
	var out []awstest.Call
	for _, c := range f.aws.Calls() {
		if c.Action == "AssumeRole" {
			out = append(out, c)
		}
	}
	return out
}

// s3Client is the real SDK's S3 client with issued credentials, against the
// stand-in.
func (f *fixture) s3Client(c broker.Credentials) *s3.Client {
	return s3.New(s3.Options{Region: region, BaseEndpoint: aws.String(f.aws.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)})
}

func (f *fixture) get(t *testing.T, c broker.Credentials, key string) error {
	t.Helper()
	out, err := f.s3Client(c).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("data-lake"), Key: aws.String(key)})
	if err == nil {
		out.Body.Close()
	}
	return err
}

// TestIssue: a session's credentials are the runtime role's, with the
// session policy the principal's AWS rules compile to (the approve rule
// left out), its ID as the source identity, its project and agent as
// tags, and the policy's credential_ttl; AWS (the stand-in) then allows
// what the policy allows and nothing else; the issuance is in the trail.
func TestIssue(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testPolicy)
	f.aws.PutObject("data-lake", "raw/orders.csv", []byte("id,total\n1,9.99\n"))
	start := time.Now()
	c, ref := f.broker.Issue(context.Background(), f.token, broker.Request{})
	if ref != nil {
		t.Fatalf("Issue: %+v", ref)
	}
	if c.Version != 1 || c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" {
		t.Fatalf("credentials %+v", c)
	}
	if d := c.Expiration.Sub(start); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("credentials live %v, want the policy's 30m", d)
	}
	calls := f.assumes()
	if len(calls) != 1 {
		t.Fatalf("AssumeRole calls %+v", calls)
	}
	p := calls[0].Params
	want := map[string]string{"RoleArn": f.role, "RoleSessionName": "warden-" + f.session.ID, "SourceIdentity": f.session.ID,
		"DurationSeconds": "1800", "Tags.member.1.Key": broker.TagProject, "Tags.member.1.Value": "data",
		"Tags.member.2.Key": broker.TagAgent, "Tags.member.2.Value": "loader", "Version": "2011-06-15"}
	for k, v := range want {
		if p.Get(k) != v {
			t.Errorf("AssumeRole %s = %q, want %q", k, p.Get(k), v)
		}
	}
	doc := p.Get("Policy")
	for _, s := range []string{`"s3:GetObject"`, `"arn:aws:s3:::data-lake/raw/*"`, `"s3:PutObject"`, `"Deny"`} {
		if !strings.Contains(doc, s) {
			t.Errorf("session policy %s lacks %s", doc, s)
		}
	}
	if strings.Contains(doc, "tool:") {
		t.Errorf("session policy %s holds a tool rule", doc)
	}

	if err := f.get(t, c, "raw/orders.csv"); err != nil {
		t.Errorf("GetObject raw/: %v", err)
	}
	if err := f.get(t, c, "curated/report.csv"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("GetObject curated/ (not allowed): %v", err)
	}

	var codes []string
	recs, err := f.db.Audit().Query(context.Background(), audit.Filter{Session: f.session.ID}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		codes = append(codes, string(r.Code)+" "+r.Status)
		if r.Code == audit.AWSCredentials {
			var args map[string]any
			_ = json.Unmarshal(r.Args, &args)
			if r.Status != "issued" || args["source_identity"] != f.session.ID || args["duration_seconds"] != float64(1800) ||
				len(args["policy_sha256"].(string)) != 64 || strings.Contains(string(r.Args), c.SecretAccessKey) || strings.Contains(string(r.Args), c.SessionToken) {
				t.Errorf("issuance record %s", r.Args)
			}
		}
	}
	if !slices.Equal(codes, []string{"decision.allow ", "aws.credentials issued"}) {
		t.Errorf("trail %q", codes)
	}
}

// TestIssueCallerGone: when the caller goes away while STS issues, the
// issuance, which happened at AWS, is in the trail all the same.
func TestIssueCallerGone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testPolicy)
	ctx, cancel := context.WithCancel(context.Background())
	sts := f.broker.STS
	f.broker.STS = stsFunc(func(c context.Context, in awssts.AssumeRoleInput) (awssts.Credentials, error) {
		creds, err := sts.AssumeRole(c, in)
		cancel() // the caller hangs up as AWS answers
		return creds, err
	})
	f.broker.Issue(ctx, f.token, broker.Request{})
	recs, err := f.db.Audit().Query(context.Background(), audit.Filter{Session: f.session.ID, Code: audit.AWSCredentials}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Status != "issued" {
		t.Fatalf("issuance records %+v", recs)
	}
}

type stsFunc func(context.Context, awssts.AssumeRoleInput) (awssts.Credentials, error)

func (f stsFunc) AssumeRole(ctx context.Context, in awssts.AssumeRoleInput) (awssts.Credentials, error) {
	return f(ctx, in)
}

// TestIssueNeverOutlivesTheSession: a session with 20 minutes left gets 20
// minutes; with role chaining, an hour at most; with 10 minutes left,
// none (AWS issues at least 15).
func TestIssueNeverOutlivesTheSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, strings.Replace(testPolicy, "credential_ttl: 30m", "credential_ttl: 2h", 1))
	key, err := f.ids.RotateEnrollKey(ctx, "data")
	if err != nil {
		t.Fatal(err)
	}
	_, short, err := f.ids.Login(ctx, key, "loader", nil, 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, ref := f.broker.Issue(ctx, short, broker.Request{})
	if ref != nil {
		t.Fatal(ref)
	}
	if d := time.Until(c.Expiration); d > 20*time.Minute || d < 18*time.Minute {
		t.Errorf("credentials live %v, past the session's 20m", d)
	}
	// Role chaining: at most an hour, whatever the policy says.
	f.broker.MaxTTL = broker.ChainedTTL
	if c, ref := f.broker.Issue(ctx, f.token, broker.Request{}); ref != nil || time.Until(c.Expiration) > time.Hour {
		t.Errorf("chained: %v, %+v", time.Until(c.Expiration), ref)
	}
	if d := f.assumes()[len(f.assumes())-1].Params.Get("DurationSeconds"); d != "3600" {
		t.Errorf("chained: DurationSeconds %s, want 3600", d)
	}
	_, shorter, err := f.ids.Login(ctx, key, "loader", nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, ref := f.broker.Issue(ctx, shorter, broker.Request{}); ref == nil || ref.Status != http.StatusForbidden ||
		!strings.Contains(ref.Message, "at least 15m0s") {
		t.Errorf("a session with 10 minutes left: %+v", ref)
	}
}

// TestIssueRefused: no AWS rule, a bad token, a killed session, a bad
// request, and a session policy over AWS's limit are each refused with
// the reason; nothing is issued.
func TestIssueRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, testPolicy)
	for name, tt := range map[string]struct {
		token  string
		req    broker.Request
		status int
		says   string
	}{
		"bad token":     {"wdn_s_nope_00", broker.Request{}, 401, "unknown, malformed or expired Warden token"},
		"not aws":       {f.token, broker.Request{Action: "tool:Bash", Resource: "ls"}, 400, "needs an AWS action"},
		"no resource":   {f.token, broker.Request{Action: "s3:GetObject"}, 400, "needs an AWS action"},
		"denied action": {f.token, broker.Request{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::data-lake/curated/x"}, 403, "no-delete"},
	} {
		if _, ref := f.broker.Issue(ctx, tt.token, tt.req); ref == nil || ref.Status != tt.status || !strings.Contains(ref.Message, tt.says) {
			t.Errorf("%s: %+v, want %d saying %q", name, ref, tt.status, tt.says)
		}
	}

	other := newFixture(t, "version: 1\nrules:\n  - {effect: allow, action: \"tool:*\"}\n")
	if _, ref := other.broker.Issue(ctx, other.token, broker.Request{}); ref == nil || ref.Status != 403 || !strings.Contains(ref.Message, "allows data/loader no AWS action") {
		t.Errorf("no AWS rule: %+v", ref)
	}

	// A session policy AWS packs into more than its space: refused, named.
	packed := newFixture(t, testPolicy)
	packed.aws.SetPackedLimit(100)
	if _, ref := packed.broker.Issue(ctx, packed.token, broker.Request{}); ref == nil || ref.Status != 403 ||
		!strings.Contains(ref.Message, "data/loader") || !strings.Contains(ref.Message, "too large once packed") {
		t.Errorf("packed policy too large: %+v", ref)
	}

	if err := f.ids.KillSession(ctx, f.session.ID, "alice", "compromised"); err != nil {
		t.Fatal(err)
	}
	if _, ref := f.broker.Issue(ctx, f.token, broker.Request{}); ref == nil || ref.Status != 403 || !strings.Contains(ref.Message, "killed") {
		t.Errorf("killed session: %+v", ref)
	}
	for _, c := range f.assumes() {
		t.Errorf("AssumeRole called for a refused request: %v", c.Params)
	}
}

// TestApprovedAction: an action the policy sends to approval is left out of
// the session's credentials; asked for alone, it waits on an approval;
// once approved, the credential allows exactly that action on that
// resource, for at most 15 minutes, once.
func TestApprovedAction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, testPolicy)
	f.aws.PutObject("data-lake", "raw/old.csv", []byte("x"))
	if _, ref := f.broker.Issue(ctx, f.token, broker.Request{}); ref != nil {
		t.Fatal(ref)
	}
	req := broker.Request{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::data-lake/raw/old.csv"}
	_, ref := f.broker.Issue(ctx, f.token, req)
	if ref == nil || ref.Approval == "" || !strings.Contains(ref.Message, "approval pending") {
		t.Fatalf("the approve rule's action: %+v", ref)
	}
	if _, err := f.core.Approvals.Decide(ctx, ref.Approval, approval.Decision{Approve: true, By: "U012AB3CD"}); err != nil {
		t.Fatal(err)
	}
	one, ref := f.broker.Issue(ctx, f.token, req)
	if ref != nil {
		t.Fatalf("once approved: %+v", ref)
	}
	if d := time.Until(one.Expiration); d > 15*time.Minute {
		t.Errorf("the one action's credential lives %v", d)
	}
	calls := f.assumes()
	doc := calls[len(calls)-1].Params.Get("Policy")
	if doc != `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:DeleteObject"],"Resource":["arn:aws:s3:::data-lake/raw/old.csv"]}]}` {
		t.Errorf("the one action's session policy: %s", doc)
	}
	if strings.Contains(calls[0].Params.Get("Policy"), "DeleteObject\"],\"Resource\":[\"arn:aws:s3:::data-lake/raw") {
		t.Errorf("the session's policy allows the approve rule's action: %s", calls[0].Params.Get("Policy"))
	}
	if _, ref := f.broker.Issue(ctx, f.token, req); ref == nil || ref.Approval == "" {
		t.Errorf("the same request again, its approval used: %+v", ref)
	}
}

// TestKillRevokes is the kill switch: a killed session's credentials are
// refused by AWS (the stand-in) once the revocation is applied; a paused
// session's too, while the credentials it gets once resumed work; killing
// an agent or freezing a project refuses its sessions' credentials, not
// another project's.
func TestKillRevokes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, testPolicy)
	f.aws.PutObject("data-lake", "raw/orders.csv", []byte("x"))
	issue := func(token string) broker.Credentials {
		t.Helper()
		c, ref := f.broker.Issue(ctx, token, broker.Request{})
		if ref != nil {
			t.Fatal(ref)
		}
		return c
	}
	login := func(project, agent string) (identity.Session, string) {
		t.Helper()
		key, err := f.ids.RotateEnrollKey(ctx, project)
		if err != nil {
			t.Fatal(err)
		}
		s, tok, err := f.ids.Login(ctx, key, agent, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return s, tok
	}
	refused := func(what string, c broker.Credentials) {
		t.Helper()
		if err := f.get(t, c, "raw/orders.csv"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			t.Errorf("%s: %v, want AccessDenied", what, err)
		}
	}
	works := func(what string, c broker.Credentials) {
		t.Helper()
		if err := f.get(t, c, "raw/orders.csv"); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}

	killed := issue(f.token)
	bystander, btok := login("data", "loader")
	other := issue(btok)
	works("before the kill", killed)
	if err := f.ids.KillSession(ctx, f.session.ID, "alice", "leaked its credentials"); err != nil {
		t.Fatal(err)
	}
	refused("a killed session's credentials", killed)
	works("another session's credentials", other)

	// A pause denies what was issued before it; once resumed, new
	// credentials (issued after the pause) work.
	f.aws.Advance(2 * time.Second)
	if err := f.ids.PauseSession(ctx, bystander.ID, "watchdog", "loop"); err != nil {
		t.Fatal(err)
	}
	refused("a paused session's credentials", other)
	f.aws.Advance(2 * time.Second)
	if err := f.ids.ResumeSession(ctx, bystander.ID); err != nil {
		t.Fatal(err)
	}
	works("credentials issued after the resume", issue(btok))

	// An agent killed, a project frozen.
	if _, err := f.ids.CreateProject(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	_, wtok := login("web", "builder")
	web := issue(wtok)
	_, ltok := login("data", "loader")
	loader := issue(ltok)
	f.aws.Advance(2 * time.Second)
	if err := f.ids.KillAgent(ctx, "data", "loader", "alice", "retired"); err != nil {
		t.Fatal(err)
	}
	refused("a killed agent's credentials", loader)
	works("another project's credentials", web)
	if err := f.ids.FreezeProject(ctx, "web", "alice", "incident"); err != nil {
		t.Fatal(err)
	}
	refused("a frozen project's credentials", web)

	docs := fmt.Sprint(f.aws.RolePolicies(roleName))
	if !strings.Contains(docs, `"aws:SourceIdentity":"`+f.session.ID+`"`) || !strings.Contains(docs, `"aws:PrincipalTag/warden:project":"web"`) {
		t.Errorf("revocation policies %s", docs)
	}
}

// TestRevocationsExpire: at IAM's size limit, the stops whose credentials
// have all expired make room; with no more room, the stops give way to
// one policy that denies every credential issued before the newest stop,
// which still refuses a stopped session's credentials.
func TestRevocationsExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, testPolicy)
	f.aws.PutObject("data-lake", "raw/orders.csv", []byte("x"))
	f.revoker.Now = f.aws.Now
	stop := func(i int, at time.Time) broker.Stop { return broker.Stop{Session: fmt.Sprintf("%024x", i), At: at} }
	names := func() []string { return slices.Sorted(maps.Keys(f.aws.RolePolicies(roleName))) }
	// Stops of 13 hours ago: their credentials have all expired.
	for i := range 20 {
		if err := f.revoker.Revoke(ctx, stop(i, f.aws.Now().Add(-13*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	old := names() // agent-max, then the 20 stops
	c, ref := f.broker.Issue(ctx, f.token, broker.Request{})
	if ref != nil {
		t.Fatal(ref)
	}
	for i := 100; i < 200; i++ {
		if err := f.revoker.Revoke(ctx, stop(i, f.aws.Now().Add(time.Second))); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
		if i != 129 {
			continue
		}
		// 50 stops would not fit: the expired ones made room.
		now := names()
		if slices.Contains(now, old[len(old)-1]) || len(now) != 31 || slices.Contains(now, awsconfig.RevocationPrefix+"all") {
			t.Fatalf("after 30 new stops: %d policies %v", len(now), now)
		}
	}
	now := names()
	for _, n := range old {
		if n != "agent-max" && slices.Contains(now, n) {
			t.Errorf("%s outlived its credentials", n)
		}
	}
	all, ok := f.aws.RolePolicy(roleName, awsconfig.RevocationPrefix+"all")
	if !ok || !strings.Contains(all, `"DateLessThan":{"aws:TokenIssueTime":"`) || len(now) > 25 {
		t.Errorf("after 100 stops at once: %d policies, the one for all: %s", len(now), all)
	}
	if err := f.get(t, c, "raw/orders.csv"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("credentials issued before the newest stop: %v, want AccessDenied", err)
	}
}

// TestIssuedPolicyAgreesWithWarden extends the IAM compiler's property test
// (policy.TestSessionPolicyAgreesWithIAM) through the broker: for random
// policies, the session policy STS received for a session allows, by IAM's
// rules (policy/iameval), exactly the (action, resource) pairs Warden
// allows that principal — approve rules and conditional allows aside,
// which the credentials must not carry.
func TestIssuedPolicyAgreesWithWarden(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 5))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	actions := []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:Get*", "s3:*", "dynamodb:GetItem", "dynamodb:*"}
	resources := []string{"arn:aws:s3:::lake/raw/*", "arn:aws:s3:::lake/*", "arn:aws:s3:::*", "arn:aws:s3:::lake/raw/a?.csv",
		"arn:aws:dynamodb:*:*:table/orders", "*"}
	asked := []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "dynamodb:GetItem", "dynamodb:PutItem"}
	on := []string{"arn:aws:s3:::lake/raw/a1.csv", "arn:aws:s3:::lake/curated/b", "arn:aws:s3:::other/x",
		"arn:aws:dynamodb:eu-central-1:123456789012:table/orders", "arn:aws:dynamodb:eu-central-1:123456789012:table/users"}
	for round := range 25 {
		var b strings.Builder
		b.WriteString("version: 1\nrules:\n  - {effect: allow, action: \"s3:GetObject\", resource: \"arn:aws:s3:::lake/raw/*\"}\n")
		for range 1 + rng.IntN(5) {
			effect := pick([]string{"allow", "allow", "deny", "approve"})
			fmt.Fprintf(&b, "  - {effect: %s, action: [%q, %q], resource: [%q, %q]}\n", effect, pick(actions), pick(actions), pick(resources), pick(resources))
		}
		if strings.Contains(b.String(), "approve") {
			b.WriteString("approvers:\n  leads: {slack: [U012AB3CD], rules: [\"*\"]}\n")
		}
		f := newFixture(t, b.String())
		if err := f.revoker.IAM.PutRolePolicy(context.Background(), roleName, "agent-max",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`); err != nil {
			t.Fatal(err)
		}
		if _, ref := f.broker.Issue(context.Background(), f.token, broker.Request{}); ref != nil {
			t.Fatalf("round %d: %+v\n%s", round, ref, b.String())
		}
		calls := f.assumes()
		doc, err := iameval.Parse([]byte(calls[len(calls)-1].Params.Get("Policy")))
		if err != nil {
			t.Fatal(err)
		}
		pol := f.core.Pipeline.Policy.Current()
		pr := policy.Principal{Project: f.session.Project, Agent: f.session.Agent, Session: f.session.ID}
		for _, a := range asked {
			for _, r := range on {
				warden := pol.Evaluate(&policy.Request{Principal: pr, Action: a, Resource: r}).Effect == policy.Allow
				iam := doc.Decide(a, r, map[string]string{"aws:SourceIdentity": f.session.ID}) == iameval.Allow
				if warden != iam {
					t.Fatalf("round %d, %s on %s: Warden allows %v, the issued session policy %v\npolicy:\n%s\nissued: %s",
						round, a, r, warden, iam, b.String(), calls[len(calls)-1].Params.Get("Policy"))
				}
			}
		}
	}
}

// TestSessionPolicyTooLarge: a principal whose AWS rules compile to more
// than AWS's 2,048 characters (here through its session's labels, which
// the policy's validation cannot foresee) is refused with its name and the
// size, before anything is asked of AWS.
func TestSessionPolicyTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n")
	for i := range 60 {
		fmt.Fprintf(&b, "  - {effect: allow, who: {labels: {tier: gold}}, action: \"s3:GetObject\", resource: \"arn:aws:s3:::bucket-%02d-with-a-long-name/raw/*\"}\n", i)
	}
	f := newFixture(t, b.String())
	key, err := f.ids.RotateEnrollKey(ctx, "data")
	if err != nil {
		t.Fatal(err)
	}
	_, gold, err := f.ids.Login(ctx, key, "loader", map[string]string{"tier": "gold"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, ref := f.broker.Issue(ctx, gold, broker.Request{})
	if ref == nil || ref.Status != http.StatusForbidden || !regexp.MustCompile(`session policy of data/loader is \d{4} characters, over AWS's limit of 2048`).MatchString(ref.Message) {
		t.Errorf("too large: %+v", ref)
	}
	if n := len(f.assumes()); n != 0 {
		t.Errorf("%d AssumeRole calls", n)
	}
}

// TestConcurrentRevocations: stops written at once by several instances
// (IAM has no conditional write) each hold: each is a policy of its own.
func TestConcurrentRevocations(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testPolicy)
	now := f.aws.Now()
	ids := make([]string, 8)
	errs := make(chan error, len(ids))
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = fmt.Sprintf("%024x", i+1)
		wg.Go(func() {
			r := &broker.Revoker{IAM: f.revoker.IAM, Role: roleName}
			errs <- r.Revoke(context.Background(), broker.Stop{Session: ids[i], At: now})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	docs := fmt.Sprint(f.aws.RolePolicies(roleName))
	for _, id := range ids {
		if !strings.Contains(docs, `"aws:SourceIdentity":"`+id+`"`) {
			t.Errorf("session %s lost: %s", id, docs)
		}
	}
}
