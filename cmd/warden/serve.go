package main

import (
	"sync"

	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/policy/examples"
	"github.com/wardenhq/warden/shared/approvalpost"
	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsiam"
	"github.com/wardenhq/warden/shared/awssts"
	"github.com/wardenhq/warden/shared/broker"
	"github.com/wardenhq/warden/shared/gitproxy"
	"github.com/wardenhq/warden/shared/identity"
	"github.com/wardenhq/warden/shared/llm"
	"github.com/wardenhq/warden/shared/notify"
	"github.com/wardenhq/warden/shared/pipeline"
	"github.com/wardenhq/warden/shared/policyload"
	"github.com/wardenhq/warden/shared/pricing"
	"github.com/wardenhq/warden/shared/secret"
	"github.com/wardenhq/warden/shared/server"
	"github.com/wardenhq/warden/shared/slackapp"
	"github.com/wardenhq/warden/shared/sqlite"
)

// serveConfig is what `warden serve` runs with.
type serveConfig struct {
	addr            string
	dataDir         string
	policyFile      string
	resetAdminToken bool
	shutdownGrace   time.Duration
	reloadInterval  time.Duration
	firstProject    string
	digestInterval  time.Duration
	archiveDir      string
	archiveInterval time.Duration
	archiveBatch    int
	retention       retentionValue
	llmConfig       string
	prices          string
	// awsRoleARN is the agent runtime role the credential broker issues
	// credentials of (none: the broker is off); awsSTSEndpoint replaces
	// STS's regional endpoint.
	awsRoleARN, awsSTSEndpoint, awsIAMEndpoint string
	// aws, if set, replaces the process's AWS configuration for the
	// broker (tests).
	aws *aws.Config
	// gitConfig is the git remote's upstreams file (none: no git remote).
	gitConfig string
	// getenv reads the environment for the provider keys; os.Getenv if nil.
	getenv func(string) string
	// notify overrides the notifier's Slack and Telegram API URLs and
	// secrets, for tests.
	notify notify.Config
}

func serveCommand() *cobra.Command {
	var cfg serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the local Warden: hooks, sessions, kill switch, audit, on embedded storage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr(), nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "listen address")
	f.StringVar(&cfg.dataDir, "data", ".warden", "data directory (the SQLite database lives here)")
	f.StringVar(&cfg.policyFile, "policy", "", "policy file, hot-reloaded on change (default: the built-in example policy)")
	f.BoolVar(&cfg.resetAdminToken, "reset-admin-token", false, "issue a new admin token and print it")
	f.DurationVar(&cfg.shutdownGrace, "shutdown-grace", 30*time.Second, "how long shutdown waits for requests in flight")
	f.DurationVar(&cfg.reloadInterval, "reload-interval", time.Second, "how often the policy file is checked for changes")
	f.DurationVar(&cfg.digestInterval, "digest-interval", time.Minute, "how often the audit trail's state is signed")
	f.StringVar(&cfg.archiveDir, "archive-dir", "", "where the audit trail is archived in signed, compressed batches (default: DATA/archive)")
	f.DurationVar(&cfg.archiveInterval, "archive-interval", 5*time.Minute, "how often new audit records are archived (0: no archive)")
	f.IntVar(&cfg.archiveBatch, "archive-batch", 10_000, fmt.Sprintf("most records in one archived batch (at most %d)", audit.MaxBatchRecords))
	f.Var(&cfg.retention, "retention", "delete archived audit records from the database once older than this, e.g. 90d or 2160h (0: keep everything)")
	f.StringVar(&cfg.llmConfig, "llm-config", "", "LLM gateway upstreams and model routes (default: claude-* to Anthropic with $ANTHROPIC_API_KEY, the rest to OpenAI with $OPENAI_API_KEY)")
	f.StringVar(&cfg.prices, "prices", "", "a price table that extends and overrides the built-in one")
	f.StringVar(&cfg.awsRoleARN, "aws-role-arn", "", "the agent runtime role the AWS credential broker issues session credentials of, with the server's own AWS credentials (the standard chain); none: the broker is off")
	f.StringVar(&cfg.awsSTSEndpoint, "aws-sts-endpoint", "", "STS endpoint for the broker (default: the region's, https://sts.REGION.amazonaws.com)")
	f.StringVar(&cfg.awsIAMEndpoint, "aws-iam-endpoint", "", "IAM endpoint for the broker's revocations (default https://iam.amazonaws.com)")
	f.StringVar(&cfg.gitConfig, "git-config", "", "the git remote's upstreams: which hosts <endpoint>/git/<host>/<org>/<repo>.git proxies, with Warden's credential for each (none: no git remote)")
	f.StringVar(&cfg.firstProject, "first-project", "project-a", "project created on first start, so that an agent can attach at once (empty: none)")
	return cmd
}

// serve runs until ctx ends. ready, if not nil, receives the listening
// address once the server accepts requests.
func serve(ctx context.Context, cfg serveConfig, stdout, stderr io.Writer, ready chan<- string) error {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := cfg.check(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory %s: %w", cfg.dataDir, err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(cfg.dataDir, "warden.db"))
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()
	trail := db.Audit()

	var policies *policyload.Source
	if cfg.policyFile != "" {
		policies, err = policyload.Open(ctx, cfg.policyFile, trail, log)
		if err != nil {
			return fmt.Errorf("load policy: %w", err)
		}
	} else {
		p, err := policy.Load("built-in example policy", examples.Policy)
		if err != nil {
			return fmt.Errorf("load the built-in policy: %w", err)
		}
		log.Info("using the built-in example policy; pass --policy FILE for your own", "rules", p.RuleCount())
		policies = policyload.Static(p)
	}

	// This process is the only writer of the file, so identity reads can
	// be served from memory; kills and freezes go through it too.
	ids := identity.NewService(identity.NewCachedStore(db.Identity()), nil)
	adminToken, err := ids.EnsureAdminToken(ctx)
	if err == nil && cfg.resetAdminToken {
		adminToken, err = ids.ResetAdminToken(ctx)
	}
	if err != nil {
		return err
	}
	var enrollKey string
	if adminToken != "" && cfg.firstProject != "" && !cfg.resetAdminToken {
		if enrollKey, err = ids.CreateProject(ctx, cfg.firstProject); err != nil {
			return fmt.Errorf("create the first project: %w", err)
		}
		record(ctx, trail, log, audit.Record{Code: audit.ProjectCreated, Project: cfg.firstProject, Actor: "warden serve (first start)"})
	}

	key, err := metaKey(ctx, db.Identity(), "audit-redaction-key")
	if err != nil {
		return err
	}
	seed, err := metaKey(ctx, db.Identity(), "audit-signing-key")
	if err != nil {
		return err
	}
	signer := ed25519.NewKeyFromSeed(seed)
	// The tracker keeps each approval's Slack messages and updates them
	// with the outcome; it knows the approvals once they are assembled.
	posts := &approvalpost.Tracker{Log: log}
	notifier, err := newNotifier(cfg, policies, log, posts.Posted)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := notifier.Close(ctx); err != nil {
			log.Error("send the last notifications", "err", err)
		}
	}()
	var secrets secret.Source = notify.EnvSecrets{}
	if cfg.notify.Secrets != nil {
		secrets = cfg.notify.Secrets
	}
	core := pipeline.Assemble(pipeline.Parts{Identity: ids, Policy: policies, Ledger: db.Budgets(), Approvals: db.Approvals(),
		Audit: trail, Notifier: notifier, RedactionKey: key, Log: log})
	pipe := core.Pipeline
	posts.Approvals, core.Approvals.Decided = core.Approvals, posts.Decided
	posts.Send = func(_ context.Context, e notify.Envelope) error { return notifier.Queue(e) }
	slackApp := &slackapp.Interactivity{Approvals: core.Approvals, Secrets: secrets, APIURL: cfg.notify.SlackAPIURL, Log: log}
	gateway, err := newGateway(cfg, pipe, log)
	if err != nil {
		return err
	}
	var archive audit.ArchiveStore
	if cfg.archiveInterval > 0 {
		archive = audit.DirStore{Root: cmp.Or(cfg.archiveDir, filepath.Join(cfg.dataDir, "archive"))}
	}
	awsBroker, err := newBroker(ctx, cfg, pipe, ids, log)
	if err != nil {
		return err
	}
	gitRemote, gitHosts, err := newGitProxy(cfg, pipe, log)
	if err != nil {
		return err
	}
	srv := &server.Server{Identity: ids, Pipeline: pipe, Audit: trail, Trail: trail, Query: trail, Stored: trail, Digests: trail, Archive: archive, LLM: gateway, Git: gitRemote, GitHosts: gitHosts,
		Budgets: core.Budgets.Service, Policy: policies, Resumed: core.Watchdog.Reset, Approvals: core.Approvals,
		// Slack's clicks on approvals, signed with the app's signing secret
		// (WARDEN_SECRET_SLACK_SIGNING_SECRET).
		Slack:     slackApp,
		PublicKey: signer.Public().(ed25519.PublicKey), Log: log,
		Ready: func(ctx context.Context) error {
			if policies.Current() == nil {
				return errors.New("no policy loaded")
			}
			_, err := trail.Latest(ctx)
			return err
		}}
	if awsBroker != nil {
		srv.Broker = awsBroker
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	endpoint := "http://" + ln.Addr().String()
	printBanner(stdout, endpoint, adminToken, cfg.firstProject, enrollKey)
	record(ctx, trail, log, audit.Record{Code: audit.ServerStarted, Resource: endpoint})

	go policies.Watch(ctx, cfg.reloadInterval)
	// Approvals not decided in time expire; their times are in the
	// database, so a restart loses none.
	go core.Approvals.Run(ctx, time.Second)
	// With an app-level token, Slack's clicks come over Socket Mode: no
	// public URL needed.
	if _, err := secrets.Get(ctx, slackapp.AppToken); err == nil {
		go func() {
			if err := slackApp.RunSocketMode(ctx); err != nil {
				log.Error("slack socket mode", "err", err)
			}
		}()
	}
	digester := &audit.Digester{Trail: trail, Store: trail, Key: signer}
	digested := make(chan struct{})
	go func() {
		defer close(digested)
		digester.Run(ctx, max(cfg.digestInterval, time.Second), func(err error) { log.Error("sign audit digest", "err", err) })
	}()
	archived := make(chan struct{})
	go func() {
		defer close(archived)
		if archive != nil {
			archiveTrail(ctx, cfg, archive, trail, signer, log)
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	log.Info("listening", "endpoint", endpoint, "data", cfg.dataDir)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownGrace)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
	}
	record(shutdownCtx, trail, log, audit.Record{Code: audit.ServerStopped, Resource: endpoint})
	<-digested // the digester signs what is left as ctx ends; before the store closes
	if _, err := digester.Once(shutdownCtx); err != nil {
		log.Error("sign the last audit digest", "err", err)
	}
	<-archived
	return nil
}

// newNotifier sends alerts to the policy's channels, with their secrets
// from the environment (see notify.EnvSecrets).
func newNotifier(cfg serveConfig, policies *policyload.Source, log *slog.Logger, posted func(context.Context, string, notify.Target)) (*notify.Notifier, error) {
	nc := cfg.notify
	nc.Channels, nc.Log, nc.OnPosted = policies, log, posted
	if nc.Secrets == nil {
		nc.Secrets = notify.EnvSecrets{}
	}
	n, err := notify.New(nc)
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return n, nil
}

// newGateway configures the LLM gateway: its upstreams and its prices.
func newGateway(cfg serveConfig, pipe *pipeline.Pipeline, log *slog.Logger) (*llm.Gateway, error) {
	getenv := cfg.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	conf := llm.DefaultConfig(getenv)
	if cfg.llmConfig != "" {
		data, err := os.ReadFile(cfg.llmConfig)
		if err == nil {
			conf, err = llm.LoadConfig(cfg.llmConfig, data, getenv)
		}
		if err != nil {
			return nil, fmt.Errorf("--llm-config: %w", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(conf.Upstreams)) {
		if u := conf.Upstreams[name]; u.MissingKey() {
			log.Warn("LLM upstream has no key: its models are refused until it has one", "upstream", name, "key", u.KeySource)
		}
	}
	prices := pricing.Default()
	if cfg.prices != "" {
		data, err := os.ReadFile(cfg.prices)
		if err != nil {
			return nil, fmt.Errorf("--prices: %w", err)
		}
		own, err := pricing.Load(cfg.prices, data)
		if err != nil {
			return nil, fmt.Errorf("--prices: %w", err)
		}
		prices = prices.Merge(own)
	}
	return &llm.Gateway{Pipeline: pipe, Config: conf, Prices: prices, Log: log, LoadAWS: processAWS()}, nil
}

// newBroker is the AWS credential broker, with the server's own AWS
// credentials and region (the standard chain); nil without a runtime role.
// Each stopped session, agent or project has the AWS credentials issued
// before the stop denied on the runtime role.
func newBroker(ctx context.Context, cfg serveConfig, pipe *pipeline.Pipeline, ids *identity.Service, log *slog.Logger) (*broker.Broker, error) {
	if cfg.awsRoleARN == "" {
		log.Info("the AWS credential broker is off: no --aws-role-arn")
		return nil, nil
	}
	role := broker.RoleName(cfg.awsRoleARN)
	if role == "" {
		return nil, fmt.Errorf("--aws-role-arn %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", cfg.awsRoleARN)
	}
	var (
		awsCfg aws.Config
		err    error
	)
	if cfg.aws != nil {
		awsCfg = *cfg.aws
	} else if awsCfg, err = processAWS()(ctx); err != nil {
		return nil, fmt.Errorf("the AWS credential broker needs the server's AWS credentials: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("the AWS credential broker needs a region: set AWS_REGION")
	}
	creds, err := awsCfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("the AWS credential broker needs the server's AWS credentials: %w", err)
	}
	var maxTTL time.Duration
	if strings.HasPrefix(creds.AccessKeyID, "ASIA") {
		// Temporary credentials (a role's): AssumeRole with them is role
		// chaining, which AWS caps at an hour.
		maxTTL = broker.ChainedTTL
	}
	sts := &awssts.Client{Region: awsCfg.Region, Credentials: awsCfg.Credentials, Endpoint: cfg.awsSTSEndpoint}
	revoker := &broker.Revoker{IAM: &awsiam.Client{Credentials: awsCfg.Credentials, Endpoint: cfg.awsIAMEndpoint}, Role: role}
	ids.Stopped = revoker.Stopped
	log.Info("the AWS credential broker is on", "role", cfg.awsRoleARN, "region", awsCfg.Region)
	return &broker.Broker{Pipeline: pipe, STS: sts, RoleARN: cfg.awsRoleARN, MaxTTL: maxTTL, Log: log}, nil
}

// newGitProxy is the git remote over the upstreams of --git-config, whose
// credentials come from the environment; nil without one.
func newGitProxy(cfg serveConfig, pipe *pipeline.Pipeline, log *slog.Logger) (http.Handler, []string, error) {
	if cfg.gitConfig == "" {
		return nil, nil, nil
	}
	data, err := os.ReadFile(cfg.gitConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("--git-config: %w", err)
	}
	getenv := cfg.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	ups, err := gitproxy.LoadConfig(cfg.gitConfig, data, getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("--git-config: %w", err)
	}
	log.Info("the git remote is on", "hosts", ups.Hosts())
	return &gitproxy.Proxy{Pipeline: pipe, Upstreams: ups, Log: log}, ups.Hosts(), nil
}

// processAWS loads the process's AWS configuration (the standard chain:
// environment, shared files, SSO, web identity, container and instance
// roles) at the first call that needs it, for Bedrock upstreams; a failed
// load is tried again on the next call.
func processAWS() func(context.Context) (aws.Config, error) {
	var mu sync.Mutex
	var cfg *aws.Config
	return func(ctx context.Context) (aws.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		if cfg == nil {
			c, err := config.LoadDefaultConfig(ctx)
			if err != nil {
				return aws.Config{}, err
			}
			cfg = &c
		}
		return *cfg, nil
	}
}

// check refuses settings that contradict each other.
func (cfg serveConfig) check() error {
	switch {
	case cfg.retention > 0 && cfg.archiveInterval <= 0:
		return errors.New("--retention deletes only archived records, and --archive-interval 0 turns archiving off")
	case cfg.retention > 0 && time.Duration(cfg.retention) < time.Hour:
		return fmt.Errorf("--retention %s: at least 1h", time.Duration(cfg.retention))
	case cfg.archiveBatch < 0 || cfg.archiveBatch > audit.MaxBatchRecords:
		return fmt.Errorf("--archive-batch %d: between 1 and %d", cfg.archiveBatch, audit.MaxBatchRecords)
	}
	return nil
}

// archiveTrail archives the trail every archive interval and, after each
// round, deletes what retention allows, recording each deletion in the
// trail. It returns once ctx has ended and a last round has run.
func archiveTrail(ctx context.Context, cfg serveConfig, store audit.ArchiveStore, trail *sqlite.AuditLog, key ed25519.PrivateKey, log *slog.Logger) {
	arch := &audit.Archiver{Trail: trail, Store: store, Key: key, BatchRecords: cfg.archiveBatch}
	ret := &audit.Retention{Period: time.Duration(cfg.retention), Trail: trail}
	arch.Run(ctx, cfg.archiveInterval, func(err error) { log.Error("archive the audit trail", "err", err) }, func(last audit.Digest) {
		if ctx.Err() != nil {
			return // shutting down: retention waits for the next start
		}
		p, err := ret.Once(ctx, last)
		if err != nil {
			log.Error("audit retention", "err", err)
			return
		}
		if p.Records > 0 {
			reason := fmt.Sprintf("retention %s: deleted %d archived records up to seq %d, all older than %s",
				time.Duration(cfg.retention), p.Records, p.Through, p.Cutoff.Format(time.RFC3339))
			log.Info("audit retention", "deleted", p.Records, "through", p.Through)
			record(ctx, trail, log, audit.Record{Code: audit.AuditPruned, Actor: "warden serve (retention)", Reason: reason})
		}
	})
}

// retentionValue is a duration flag that also takes days: 90d.
type retentionValue time.Duration

func (r *retentionValue) String() string { return time.Duration(*r).String() }
func (r *retentionValue) Type() string   { return "duration" }

func (r *retentionValue) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return fmt.Errorf("%q: a number of days, like 90d", s)
		}
		*r = retentionValue(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("%q: a duration like 90d or 2160h", s)
	}
	*r = retentionValue(d)
	return nil
}

// metaKey returns a 32-byte server secret kept in the store, made at first
// start: the audit's redaction key, the seed of its signing key. They never
// leave the server.
func metaKey(ctx context.Context, store identity.Store, name string) ([]byte, error) {
	key, err := store.GetMeta(ctx, name)
	switch {
	case err == nil && len(key) == 32:
		return key, nil
	case err == nil:
		return nil, fmt.Errorf("%s in the store is %d bytes, not 32: the store is damaged", name, len(key))
	case !errors.Is(err, identity.ErrNotFound):
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := store.PutMeta(ctx, name, key); err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	return key, nil
}

func record(ctx context.Context, sink audit.Sink, log *slog.Logger, rec audit.Record) {
	rec.ID, rec.Time = audit.NewID(), time.Now().UTC()
	if _, err := sink.Append(ctx, rec); err != nil {
		log.Error("audit append failed", "code", rec.Code, "err", err)
	}
}

func printBanner(w io.Writer, endpoint, adminToken, project, enrollKey string) {
	self := os.Args[0]
	fmt.Fprintf(w, "Warden is listening on %s\n\n", endpoint)
	if adminToken == "" {
		fmt.Fprintf(w, "Admin token: issued at first start (%s serve --reset-admin-token issues a new one).\n", self)
		return
	}
	fmt.Fprintf(w, "Admin token (shown once; Warden keeps only its hash):\n  export WARDEN_ENDPOINT=%s\n  export WARDEN_ADMIN_TOKEN=%s\n\n", endpoint, adminToken)
	if enrollKey == "" {
		fmt.Fprintf(w, "Next: %s projects create NAME, then %s agent setup claude --enroll-key KEY --agent NAME\n", self, self)
		return
	}
	fmt.Fprintf(w, "Project %s is ready. Attach Claude Code (writes %s):\n  sudo -E %s agent setup claude --endpoint %s --enroll-key %s --agent claude-code\n"+
		"or Codex (writes %s):\n  sudo -E %s agent setup codex --endpoint %s --enroll-key %s --agent codex\n\n",
		project, claudeManagedSettings, self, endpoint, enrollKey, codexRequirements, self, endpoint, enrollKey)
}
