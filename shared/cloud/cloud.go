// Package cloud assembles Warden's core with its AWS adapters for the
// Lambda functions: the same pipeline, server and LLM gateway that `warden
// serve` runs on SQLite, here on DynamoDB, with the policy, the gateway's
// configuration and prices in the policy bucket and every secret in
// Secrets Manager.
package cloud

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/approvaltask"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/broker"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/approvalstore"
	"github.com/wardenhq/warden/shared/dynamo/identitystore"
	"github.com/wardenhq/warden/shared/dynamo/ledger"
	"github.com/wardenhq/warden/shared/dynamo/outbox"
	"github.com/wardenhq/warden/shared/gitproxy"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/llm"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/pipeline"
	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/pricing"
	"github.com/wardenhq/warden/shared/server"
	"github.com/wardenhq/warden/shared/stepfn"
)

// Options are the adapters the app runs on, built by the function's main
// from its configuration (or by a test, over emulators).
type Options struct {
	DB *dynamo.DB
	// Policy fetches the policy: the policy bucket's object in a function.
	Policy policyload.Fetcher
	// Secrets resolves secrets by name: Secrets Manager under the
	// deployment's prefix in a function.
	Secrets notify.Secrets
	// LLMConfig, Prices and GitConfig are the optional objects of the
	// policy bucket (nil: the defaults; no git remote).
	LLMConfig, Prices, GitConfig []byte
	// Admin makes the admin API available, authenticated by API Gateway
	// with IAM: the api function's.
	Admin bool
	// Archive, if not nil, is the audit archive the admin API serves (read
	// only: the archiver writes it).
	Archive audit.ArchiveStore
	// StateMachine is the approvals state machine: an execution per
	// approval waits for its decision (and expires it); Tasks starts them
	// and answers their waiting tasks. Without them an approval past its
	// time expires when next touched.
	StateMachine string
	Tasks        *stepfn.Client
	// AWS is the function's AWS configuration (its role's credentials),
	// which Bedrock upstreams are signed with.
	AWS *aws.Config
	// RuntimeRole is the agent runtime role. With STS, the credential
	// broker issues sessions credentials of it (the api function); with
	// IAM, each stopped session, agent or project has the credentials
	// issued before the stop denied on it (api and llm: the watchdog
	// stops sessions too).
	RuntimeRole string
	STS         broker.STS
	IAM         broker.IAM
	// Metrics, if not nil, publishes the budget alerts as a metric.
	Metrics *lambdas.Metrics
	Log     *slog.Logger
}

// App is the assembled core of one function instance.
type App struct {
	Server   *server.Server
	Policies *policyload.Source
	// Outbox keeps the request's notifications until it is served.
	Outbox  *outbox.Outbox
	Log     *slog.Logger
	handler http.Handler
}

// New assembles the app with every front end the options configure (the
// LLM gateway, the credential broker, the git remote). It fails, and the
// function with it, without a valid policy, the signing secret, or a
// readable configuration.
func New(ctx context.Context, o Options) (*App, error) {
	return build(ctx, o, withGateway, withBroker, withGit)
}

// NewAPI assembles the api function's app: the API, the admin API and the
// credential broker. Its binary links neither the LLM gateway nor the git
// remote, which the llm function serves.
func NewAPI(ctx context.Context, o Options) (*App, error) { return build(ctx, o, withBroker) }

// NewLLM assembles the llm function's app: the LLM gateway and the git
// remote, the routes API Gateway streams.
func NewLLM(ctx context.Context, o Options) (*App, error) { return build(ctx, o, withGateway, withGit) }

// frontEnd is a front end of the server: add adds it; secrets names the
// secrets it will read (record takes each variable a configuration
// names), so that the cold start reads them all at once.
type frontEnd struct {
	add     func(ctx context.Context, o Options, srv *server.Server, pipe *pipeline.Pipeline, log *slog.Logger) error
	secrets func(o Options, record func(env string) string)
}

var (
	withGateway = frontEnd{add: addGateway, secrets: func(o Options, record func(string) string) {
		llm.DefaultConfig(record)
		if o.LLMConfig != nil {
			_, _ = llm.LoadConfig(awsconfig.LLMConfigKey, o.LLMConfig, record)
		}
	}}
	withBroker = frontEnd{add: addBroker}
	withGit    = frontEnd{add: addGit, secrets: func(o Options, record func(string) string) {
		if o.GitConfig != nil {
			_, _ = gitproxy.LoadConfig(awsconfig.GitConfigKey, o.GitConfig, func(env string) string { record(env); return "x" })
		}
	}}
)

// addGateway serves the LLM gateway.
func addGateway(ctx context.Context, o Options, srv *server.Server, pipe *pipeline.Pipeline, log *slog.Logger) error {
	gateway, err := newGateway(ctx, o, pipe, log)
	if err != nil {
		return err
	}
	srv.LLM = gateway
	return nil
}

// addBroker serves the credential broker, when the runtime role is set.
// The function's credentials are its role's: AssumeRole with them is role
// chaining, capped at an hour.
func addBroker(_ context.Context, o Options, srv *server.Server, pipe *pipeline.Pipeline, log *slog.Logger) error {
	if o.STS != nil && o.RuntimeRole != "" {
		srv.Broker = &broker.Broker{Pipeline: pipe, STS: o.STS, RoleARN: o.RuntimeRole, MaxTTL: broker.ChainedTTL, Log: log}
	}
	return nil
}

// addGit serves the git remote, when the policy bucket has git.yaml.
func addGit(ctx context.Context, o Options, srv *server.Server, pipe *pipeline.Pipeline, log *slog.Logger) error {
	if o.GitConfig == nil {
		return nil
	}
	ups, err := gitproxy.LoadConfig(awsconfig.GitConfigKey, o.GitConfig, secretEnv(ctx, o, log))
	if err != nil {
		return err
	}
	srv.Git = &gitproxy.Proxy{Pipeline: pipe, Upstreams: ups, MaxPush: GitPushLimit, MaxAnswer: GitAnswerLimit, Log: log}
	srv.GitHosts, srv.GitMaxPush = ups.Hosts(), GitPushLimit.Bytes
	return nil
}

// GitPushLimit bounds pushes on AWS: a push is one request, which reaches
// the function only within Lambda's request payload.
var GitPushLimit = gitproxy.Limit{Bytes: lambdas.MaxBinaryBody, Why: "on AWS a push reaches Warden within Lambda's 6 MB request payload"}

// GitAnswerLimit bounds a clone's or fetch's answer on AWS: Lambda streams
// at most 200 MB of an answer (1 MiB is left for the answer's head).
var GitAnswerLimit = gitproxy.Limit{Bytes: 200_000_000 - 1<<20, Why: "on AWS Lambda streams at most 200 MB of an answer"}

// build assembles the core on the AWS adapters, with front ends.
func build(ctx context.Context, o Options, fronts ...frontEnd) (*App, error) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	trail := o.DB.Audit()
	// The policy and the secrets are read at once: on Lambda each read is
	// a round trip, and they are most of a cold start.
	var policies *policyload.Source
	var err error
	var wg sync.WaitGroup
	wg.Go(func() { policies, err = policyload.New(ctx, o.Policy, trail, log) })
	wg.Go(func() { prefetchSecrets(ctx, o, fronts) })
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	redaction, signer, err := lambdas.AuditKeys(ctx, o.Secrets)
	if err != nil {
		return nil, err
	}
	// Notifications go to the outbox table, and from its stream to the
	// notifier function: this function holds no channel's token.
	box := outbox.New(o.DB, policies)
	// The identity store is read on every request rather than cached: a
	// kill by another instance takes effect at the next request.
	ids := identity.NewService(identitystore.New(o.DB), nil)
	core := pipeline.Assemble(pipeline.Parts{Identity: ids, Policy: policies, Ledger: ledger.New(o.DB),
		Rates: ledger.NewRates(o.DB), Watchdog: ledger.NewWatchdogStore(o.DB), Approvals: approvalstore.New(o.DB), Audit: trail, Notifier: box, RedactionKey: redaction, Log: log, OnAlert: onAlert(o.Metrics)})
	pipe := core.Pipeline
	if o.Tasks != nil && o.StateMachine != "" {
		waitOnStepFunctions(core.Approvals, o.Tasks, o.StateMachine, log)
	}
	srv := &server.Server{Identity: ids, Pipeline: pipe, Audit: trail, Trail: trail, Query: trail, Stored: trail, Digests: trail,
		Archive: o.Archive, Budgets: core.Budgets.Service, Policy: policies, Resumed: core.Watchdog.Reset, Approvals: core.Approvals,
		PublicKey: signer.Public().(ed25519.PublicKey), Log: log,
		// Without the admin API, no request is an admin's: there is no
		// admin token on AWS.
		AdminPrincipal: func(*http.Request) (string, bool) { return "", false },
		Ready: func(ctx context.Context) error {
			_, err := trail.Latest(ctx)
			return err
		}}
	if o.Admin {
		srv.AdminPrincipal = lambdas.IAMCaller
	}
	for _, f := range fronts {
		if err := f.add(ctx, o, srv, pipe, log); err != nil {
			return nil, err
		}
	}
	if o.IAM != nil && o.RuntimeRole != "" {
		ids.Stopped = (&broker.Revoker{IAM: o.IAM, Role: broker.RoleName(o.RuntimeRole)}).Stopped
	}
	a := &App{Server: srv, Policies: policies, Outbox: box, Log: log}
	a.handler = srv.Handler()
	return a, nil
}

// Handler serves one request: the policy revalidated first if it is older
// than awsconfig.PolicyMaxAge (a failed revalidation keeps the policy in force and
// is logged), the notifications it made written to the outbox before it
// returns.
func (a *App) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.Policies.RefreshIfStale(r.Context(), awsconfig.PolicyMaxAge); err != nil {
			a.Log.Error("revalidate the policy", "err", err)
		}
		a.handler.ServeHTTP(w, r)
		if err := a.Outbox.Flush(context.WithoutCancel(r.Context())); err != nil {
			a.Log.Error("write notifications", "err", err)
		}
	})
}

// waitOnStepFunctions has each new approval wait in an execution of the
// state machine (named by the approval: started once), and each decision
// answer the execution's waiting task.
func waitOnStepFunctions(s *approval.Service, tasks *stepfn.Client, machine string, log *slog.Logger) {
	posted := s.Opened
	s.Opened = func(ctx context.Context, a approval.Approval) {
		if posted != nil {
			posted(ctx, a)
		}
		in := approvaltask.Input{Approval: a.ID, TimeoutSeconds: int64(a.Expires.Sub(a.Created) / time.Second)}
		if _, err := tasks.StartExecution(ctx, machine, a.ID, in); err != nil {
			log.Error("start the approval's execution; it expires when next touched", "approval", a.ID, "err", err)
		}
	}
	s.Decided = approvaltask.OnDecided(tasks, log)
}

// onAlert is the metrics' budget alert hook, nil without metrics.
func onAlert(m *lambdas.Metrics) func(context.Context, budget.Alert) {
	if m == nil {
		return nil
	}
	return func(_ context.Context, a budget.Alert) {
		m.Count(awsconfig.MetricBudgetAlerts, 1, map[string]any{"budget": a.Budget, "scope": a.Scope + " " + a.Key, "threshold": a.Threshold})
	}
}

// prefetchSecrets reads, all at once, the secrets build reads one by one
// after it: the signing secret and those of the front ends (the provider
// keys, the git hosts' tokens). The secrets source keeps what it read for
// its TTL; what fails here is read again, and reported, then.
func prefetchSecrets(ctx context.Context, o Options, fronts []frontEnd) {
	names := map[string]bool{awsconfig.SigningKeySecret: true}
	record := func(env string) string { names[SecretName(env)] = true; return "" }
	for _, f := range fronts {
		if f.secrets != nil {
			f.secrets(o, record)
		}
	}
	var wg sync.WaitGroup
	for name := range names {
		wg.Go(func() { _, _ = o.Secrets.Get(ctx, name) })
	}
	wg.Wait()
}

// secretEnv reads the variable a configuration names (ANTHROPIC_API_KEY,
// GITHUB_TOKEN) as the secret of that name in lower case with dashes
// (anthropic-api-key); "" when it cannot be read, which is logged.
func secretEnv(ctx context.Context, o Options, log *slog.Logger) func(string) string {
	return func(name string) string {
		v, err := o.Secrets.Get(ctx, SecretName(name))
		if err != nil && !errors.Is(err, notify.ErrNoSecret) {
			log.Error("read a secret a configuration names", "secret", SecretName(name), "err", err)
		}
		return v
	}
}

// newGateway configures the LLM gateway from the bucket's objects, with the
// provider keys from Secrets Manager: the variable a configuration names
// (ANTHROPIC_API_KEY) is the secret of that name in lower case with dashes
// (anthropic-api-key). A key that cannot be read leaves its upstream's
// models refused, never served without it.
func newGateway(ctx context.Context, o Options, pipe *pipeline.Pipeline, log *slog.Logger) (*llm.Gateway, error) {
	getenv := secretEnv(ctx, o, log)
	conf := llm.DefaultConfig(getenv)
	if o.LLMConfig != nil {
		var err error
		if conf, err = llm.LoadConfig(awsconfig.LLMConfigKey, o.LLMConfig, getenv); err != nil {
			return nil, err
		}
	}
	for name, u := range conf.Upstreams {
		if u.MissingKey() {
			log.Warn("LLM upstream has no key: its models are refused until it has one", "upstream", name, "secret", SecretName(strings.TrimPrefix(u.KeySource, "$")))
		}
	}
	prices := pricing.Default()
	if o.Prices != nil {
		own, err := pricing.Load(awsconfig.PricesKey, o.Prices)
		if err != nil {
			return nil, err
		}
		prices = prices.Merge(own)
	}
	return &llm.Gateway{Pipeline: pipe, Config: conf, Prices: prices, Log: log, AWS: o.AWS}, nil
}

// SecretName is the secret that holds what an environment variable of the
// local server holds: ANTHROPIC_API_KEY is anthropic-api-key.
func SecretName(env string) string {
	return strings.ReplaceAll(strings.ToLower(env), "_", "-")
}
