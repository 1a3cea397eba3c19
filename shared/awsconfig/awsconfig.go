// Package awsconfig is the contract between the CDK stack (infra/) and the
// Lambda functions (functions/): the names of the environment variables the
// stack sets and the functions read, the DynamoDB tables' key schema, and
// the reading of that configuration. It imports nothing but the standard
// library, so that the infra module can import it without the runtime's
// dependencies.
package awsconfig

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Environment variables set by the stack on the functions.
const (
	// EnvStage is the deployment's stage name (dev, prod...).
	EnvStage = "WARDEN_STAGE"
	// EnvIdentityTable, EnvAuditTable and EnvBudgetTable name the DynamoDB
	// tables.
	EnvIdentityTable = "WARDEN_IDENTITY_TABLE"
	EnvAuditTable    = "WARDEN_AUDIT_TABLE"
	EnvBudgetTable   = "WARDEN_BUDGET_TABLE"
	// EnvOutboxTable names the notifications outbox: the api and llm
	// functions put each notification there, and its stream feeds the
	// notifier function, which sends it.
	EnvOutboxTable = "WARDEN_OUTBOX_TABLE"
	// EnvPolicyBucket is the versioned bucket that holds the policy (object
	// PolicyKey), the LLM gateway's configuration (LLMConfigKey) and price
	// table (PricesKey), both optional.
	EnvPolicyBucket = "WARDEN_POLICY_BUCKET"
	// EnvArchiveBucket is the Object Lock bucket of the audit archive.
	EnvArchiveBucket = "WARDEN_ARCHIVE_BUCKET"
	// EnvSecretsPrefix is the prefix of the Secrets Manager secrets the
	// functions may read: the secret a policy or configuration names
	// "slack-bot-token" is the secret SecretsPrefix + "slack-bot-token".
	EnvSecretsPrefix = "WARDEN_SECRETS_PREFIX"
	// EnvApprovalsStateMachine is the ARN of the approvals state machine,
	// which the api and llm functions start an execution of per approval,
	// and whose waiting task the api and slack functions answer.
	EnvApprovalsStateMachine = "WARDEN_APPROVALS_STATE_MACHINE"
	// EnvRuntimeRole is the ARN of the agent runtime role: the api
	// function's credential broker issues short-lived credentials of it
	// (sts:AssumeRole with a session policy, a source identity and session
	// tags), and the api and llm functions revoke a stopped session's
	// credentials on it (inline policies named RevocationPrefix…).
	EnvRuntimeRole = "WARDEN_RUNTIME_ROLE"
)

// RevocationPrefix begins the names of the runtime role's inline policies
// that deny the credentials of stopped sessions, agents and projects (by
// aws:SourceIdentity or session tags, and aws:TokenIssueTime), one per
// stop, written by the broker.
const RevocationPrefix = "warden-revoked-"

// CloudTrailDetailType is the detail type of the EventBridge events the
// ingest function takes: the runtime role's AWS calls, as CloudTrail
// recorded them.
const CloudTrailDetailType = "AWS API Call via CloudTrail"

// PolicyMaxAge is how stale the functions' policy may be when a request
// starts: a new version in the bucket takes effect within it.
// Revalidating costs one conditional GET (304 Not Modified when unchanged).
const PolicyMaxAge = 5 * time.Second

// Objects in the policy bucket.
const (
	PolicyKey    = "policy.yaml"
	LLMConfigKey = "llm.yaml"
	PricesKey    = "prices.yaml"
	// GitConfigKey is the git remote's upstreams (optional: without it,
	// no git host is proxied).
	GitConfigKey = "git.yaml"
)

// Secret names under the secrets prefix that the stack creates.
const (
	// SigningKeySecret holds the seed of the key that signs the audit
	// trail's digests and archive batches.
	SigningKeySecret = "audit-signing-key"
	// SlackBotTokenSecret is the Slack app's bot token (posts messages,
	// reads user groups); SlackSigningSecret checks Slack's requests.
	SlackBotTokenSecret = "slack-bot-token"
	SlackSigningSecret  = "slack-signing-secret"
)

// CloudWatch metrics the functions publish in the embedded metric format
// and the stack's alarms watch: namespace MetricsNamespace, one dimension,
// MetricsDimension, whose value is the stage.
const (
	MetricsNamespace = "Warden"
	MetricsDimension = "Stage"
	// MetricBudgetAlerts counts budget alerts (api, llm).
	MetricBudgetAlerts = "BudgetAlerts"
	// MetricNotificationsFailed counts notifications the notifier gave up
	// on, one per message and channel.
	MetricNotificationsFailed = "NotificationsFailed"
)

// Key schema shared by the tables: a string partition key and a
// string sort key, and a numeric TTL attribute (seconds since the epoch).
// Some tables have sparse global secondary indexes over two string
// attributes each, projecting all attributes (TableIndexes).
const (
	AttrPK     = "pk"
	AttrSK     = "sk"
	AttrTTL    = "ttl"
	IndexGSI1  = "gsi1"
	AttrGSI1PK = "gsi1pk"
	AttrGSI1SK = "gsi1sk"
	IndexGSI2  = "gsi2"
	AttrGSI2PK = "gsi2pk"
	AttrGSI2SK = "gsi2sk"
)

// Index is a global secondary index: its name and key attributes.
type Index struct{ Name, PK, SK string }

var (
	gsi1 = Index{IndexGSI1, AttrGSI1PK, AttrGSI1SK}
	gsi2 = Index{IndexGSI2, AttrGSI2PK, AttrGSI2SK}
)

// Indexes of each table: the identity table lists sessions by creation
// (gsi1); the audit table finds records by Seq (gsi1) and by session
// (gsi2); the budget and outbox tables have none.
var (
	IdentityIndexes = []Index{gsi1}
	AuditIndexes    = []Index{gsi1, gsi2}
	BudgetIndexes   = []Index(nil)
	OutboxIndexes   = []Index(nil)
)

// Config is what a function reads from its environment. A function
// checks only the fields it uses (Require).
type Config struct {
	Stage         string
	IdentityTable string
	AuditTable    string
	BudgetTable   string
	OutboxTable   string
	PolicyBucket  string
	ArchiveBucket string
	SecretsPrefix string
	// ApprovalsStateMachine is the approvals state machine's ARN.
	ApprovalsStateMachine string
	// RuntimeRole is the agent runtime role's ARN.
	RuntimeRole string
}

// FromEnv reads the configuration; lookup is os.LookupEnv when nil.
func FromEnv(lookup func(string) (string, bool)) Config {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	return Config{
		Stage:                 get(EnvStage),
		IdentityTable:         get(EnvIdentityTable),
		AuditTable:            get(EnvAuditTable),
		BudgetTable:           get(EnvBudgetTable),
		OutboxTable:           get(EnvOutboxTable),
		PolicyBucket:          get(EnvPolicyBucket),
		ArchiveBucket:         get(EnvArchiveBucket),
		SecretsPrefix:         get(EnvSecretsPrefix),
		ApprovalsStateMachine: get(EnvApprovalsStateMachine),
		RuntimeRole:           get(EnvRuntimeRole),
	}
}

// Require reports every variable among names that is empty, in one error
// that names them: a function does not start half-configured.
func (c Config) Require(names ...string) error {
	values := map[string]string{
		EnvStage:                 c.Stage,
		EnvIdentityTable:         c.IdentityTable,
		EnvAuditTable:            c.AuditTable,
		EnvBudgetTable:           c.BudgetTable,
		EnvOutboxTable:           c.OutboxTable,
		EnvPolicyBucket:          c.PolicyBucket,
		EnvArchiveBucket:         c.ArchiveBucket,
		EnvSecretsPrefix:         c.SecretsPrefix,
		EnvApprovalsStateMachine: c.ApprovalsStateMachine,
		EnvRuntimeRole:           c.RuntimeRole,
	}
	var missing []string
	for _, n := range names {
		v, known := values[n]
		if !known {
			return fmt.Errorf("awsconfig: unknown variable %s", n)
		}
		if v == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return errors.New("missing configuration (set by the CDK stack): " + strings.Join(missing, ", "))
	}
	return nil
}
