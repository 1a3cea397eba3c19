package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/wardenhq/warden/shared/awsconfig"
)

// Secret names under the stage's prefix, besides awsconfig.SigningKeySecret.
const (
	AnthropicKeySecret      = "anthropic-api-key"
	OpenAIKeySecret         = "openai-api-key"
	SlackBotTokenSecret     = awsconfig.SlackBotTokenSecret
	SlackSigningSecretName  = awsconfig.SlackSigningSecret
	placeholderSecretLength = 48
)

// The functions' sizes. The llm function streams model answers: API
// Gateway keeps a streamed response open up to 15 minutes, and so may the
// function; api answers within API Gateway's 29 s buffered limit. The
// notifier sends a batch of at most ten notifications at once, each
// delivery with its own retries (shared/notify: up to 3 tries of 5 s, and a
// Retry-After wait of up to 30 s between them, about 75 s in all); its
// handler gives up 5 s before the timeout, so that it counts what it could
// not send rather than being cut off; the approvals state machine also
// invokes it to update an approval's Slack messages with its outcome, a
// few Slack calls and item reads and writes. Slack wants an answer to an
// interactivity request within 3 s; the slack function's timeout only
// bounds a stuck invocation. The approvals function answers the approvals
// state machine's tasks with a few item reads and writes each; the ingest
// function appends one AWS call to the audit trail per event, after one
// read of its session.
var functionSizes = map[string]struct{ memoryMB, timeoutSeconds int }{
	"api":       {512, 29},
	"llm":       {1024, 15 * 60},
	"archiver":  {512, 5 * 60},
	"notifier":  {256, 2 * 60},
	"slack":     {256, 10},
	"approvals": {256, 30},
	"ingest":    {256, 30},
}

// The approvals state machine's states, by name: the approvals function
// and the tests rely on them.
const (
	StateWait    = "Wait for a decision"
	StateExpire  = "Expire"
	StateOutcome = "Update the messages"
	StateDecided = "Decided"
)

// lambdaTransientErrors are the Lambda service's transient errors, on
// which the approvals state machine retries an invocation of the approvals
// or the notifier function. An error of the function itself is not
// retried: it fails the execution, and the ExecutionsFailed alarm fires.
var lambdaTransientErrors = []string{"Lambda.ServiceException", "Lambda.AWSLambdaException",
	"Lambda.SdkClientException", "Lambda.TooManyRequestsException"}

// SlackInteractivityPath is where Slack sends its interactivity requests
// (shared/server registers the same route): the Request URL of the Slack
// app's Interactivity settings is the API's URL with this path.
const SlackInteractivityPath = "/v1/slack/interactivity"

// StackName is the name of the stage's stack.
func StackName(stage string) string { return "Warden-" + stage }

// SecretsPrefix is the prefix of the stage's secrets in Secrets Manager.
func SecretsPrefix(stage string) string { return "warden/" + stage + "/" }

// ApprovalsStateMachineName is the name of the stage's approvals state
// machine.
func ApprovalsStateMachineName(stage string) string { return StackName(stage) + "-Approvals" }

// RuntimeRoleName is the name of the stage's agent runtime role, the role
// of the credentials the broker issues to agents.
func RuntimeRoleName(stage string) string { return StackName(stage) + "-AgentRuntime" }

// AgentBoundaryName is the name of the managed policy that is the agent
// runtime role's permissions boundary.
func AgentBoundaryName(stage string) string { return StackName(stage) + "-AgentBoundary" }

// RuntimeRoleMaxSession is the agent runtime role's maximum session
// duration, the longest credential STS issues of it (the policy's
// aws.credential_ttl is at most as long).
const RuntimeRoleMaxSession = 12 * 60 * 60

// RuntimeSessionTags are the only session tags the broker may set on the
// runtime role's sessions (shared/broker: TagProject, TagAgent).
var RuntimeSessionTags = []string{"warden:project", "warden:agent"}

// identityChanges are the actions the agent boundary denies on every
// resource: IAM (no new role, policy or access key, no iam:PassRole to a
// service), Organizations and the account's settings, and STS role
// assumptions (no role chaining out of the boundary, no root session).
var identityChanges = []string{"iam:*", "organizations:*", "account:*", "sts:AssumeRole*", "sts:AssumeRoot"}

// trailChanges are the CloudTrail actions the agent boundary denies on
// every trail: the ingest function sees the agents' AWS calls only while
// a trail logs them.
var trailChanges = []string{"cloudtrail:DeleteTrail", "cloudtrail:PutEventSelectors", "cloudtrail:StopLogging",
	"cloudtrail:UpdateTrail"}

// IngestRuleState is the ingest rule's state: enabled for every CloudTrail
// event, read-only management events (Get*, List*, Describe*) included,
// which the plain ENABLED state leaves out.
const IngestRuleState = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"

// warden is the stack under construction.
type warden struct {
	cfg   Config
	stack awscdk.Stack

	identity, audit, budget, outbox awsdynamodb.Table
	policy, archive                 awss3.Bucket
	signingKey                      awssecretsmanager.Secret
	functions                       map[string]awslambda.Function
	logGroups                       []awslogs.LogGroup
	streams                         []awslambdaeventsources.DynamoEventSource
	approvals                       sfn.StateMachine
	topic                           awssns.Topic
	api                             awsapigateway.RestApi
	ingestEvents                    awsevents.Rule
	boundary                        awsiam.ManagedPolicy
	runtimeRole                     awsiam.Role
}

// NewStack adds the stage's stack to scope.
func NewStack(scope constructs.Construct, cfg Config) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(StackName(cfg.Stage)), &awscdk.StackProps{
		StackName:   jsii.String(StackName(cfg.Stage)),
		Description: jsii.String(fmt.Sprintf("Warden control plane for AI coding agents, stage %s", cfg.Stage)),
	})
	awscdk.Tags_Of(stack).Add(jsii.String("warden:stage"), jsii.String(cfg.Stage), nil)
	w := &warden{cfg: cfg, stack: stack, functions: map[string]awslambda.Function{}}
	w.tables()
	w.buckets()
	w.secrets()
	for _, name := range Functions {
		w.function(name)
	}
	w.approvalsStateMachine()
	w.permissions()
	w.restAPI()
	w.ingestRule()
	w.alarms()
	w.agentRuntimeRole()
	w.outputs()
	return stack
}

// tables adds the identity, audit, budget and notifications outbox
// tables, with awsconfig's key schema and each table's indexes; the audit
// table streams new records to the archiver, the outbox new notifications
// to the notifier.
func (w *warden) tables() {
	table := func(id string, stream awsdynamodb.StreamViewType, indexes []awsconfig.Index) awsdynamodb.Table {
		props := &awsdynamodb.TableProps{
			PartitionKey: &awsdynamodb.Attribute{Name: jsii.String(awsconfig.AttrPK), Type: awsdynamodb.AttributeType_STRING},
			SortKey:      &awsdynamodb.Attribute{Name: jsii.String(awsconfig.AttrSK), Type: awsdynamodb.AttributeType_STRING},
			BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
			PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
				PointInTimeRecoveryEnabled: jsii.Bool(true),
			},
			TimeToLiveAttribute: jsii.String(awsconfig.AttrTTL),
			Encryption:          awsdynamodb.TableEncryption_AWS_MANAGED,
			RemovalPolicy:       awscdk.RemovalPolicy_RETAIN,
			DeletionProtection:  jsii.Bool(true),
		}
		if stream != "" {
			props.Stream = stream
		}
		t := awsdynamodb.NewTable(w.stack, jsii.String(id), props)
		for _, ix := range indexes {
			t.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
				IndexName:      jsii.String(ix.Name),
				PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String(ix.PK), Type: awsdynamodb.AttributeType_STRING},
				SortKey:        &awsdynamodb.Attribute{Name: jsii.String(ix.SK), Type: awsdynamodb.AttributeType_STRING},
				ProjectionType: awsdynamodb.ProjectionType_ALL,
			})
		}
		return t
	}
	w.identity = table("IdentityTable", "", awsconfig.IdentityIndexes)
	w.audit = table("AuditTable", awsdynamodb.StreamViewType_NEW_IMAGE, awsconfig.AuditIndexes)
	w.budget = table("BudgetTable", "", awsconfig.BudgetIndexes)
	w.outbox = table("OutboxTable", awsdynamodb.StreamViewType_NEW_IMAGE, awsconfig.OutboxIndexes)
}

// buckets adds the policy bucket and the audit archive (Object Lock,
// COMPLIANCE mode, deletes denied to everyone).
func (w *warden) buckets() {
	w.policy = awss3.NewBucket(w.stack, jsii.String("PolicyBucket"), &awss3.BucketProps{
		Versioned:         jsii.Bool(true),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	w.archive = awss3.NewBucket(w.stack, jsii.String("ArchiveBucket"), &awss3.BucketProps{
		ObjectLockEnabled: jsii.Bool(true),
		ObjectLockDefaultRetention: awss3.ObjectLockRetention_Compliance(
			awscdk.Duration_Days(jsii.Number(float64(w.cfg.ArchiveRetentionDays)))),
		Versioned:         jsii.Bool(true),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	// Object Lock already refuses to delete a locked version; the policy
	// also refuses to add delete markers, for every principal, the
	// account's root and administrators included.
	w.archive.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("DenyDeletes"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("s3:DeleteObject", "s3:DeleteObjectVersion"),
		Resources:  jsii.Strings(*w.archive.ArnForObjects(jsii.String("*"))),
	}))
}

// secrets adds the stage's secrets under SecretsPrefix. Every value is
// generated: the signing key's for good, the others as placeholders the
// operator replaces after the first deploy (infra/README.md).
func (w *warden) secrets() {
	secret := func(id, name, description string, gen *awssecretsmanager.SecretStringGenerator) awssecretsmanager.Secret {
		s := awssecretsmanager.NewSecret(w.stack, jsii.String(id), &awssecretsmanager.SecretProps{
			SecretName:           jsii.String(SecretsPrefix(w.cfg.Stage) + name),
			Description:          jsii.String(description),
			GenerateSecretString: gen,
			RemovalPolicy:        awscdk.RemovalPolicy_RETAIN,
		})
		return s
	}
	placeholder := func(id, name, what string) {
		secret(id, name, what+" — a generated placeholder: replace it with aws secretsmanager put-secret-value",
			&awssecretsmanager.SecretStringGenerator{
				PasswordLength:     jsii.Number(placeholderSecretLength),
				ExcludePunctuation: jsii.Bool(true),
			})
	}
	// 64 random letters and digits (about 380 bits): the functions derive
	// the audit trail's redaction key and digest signing key from it
	// (shared/cloud). Never replace it: digests signed before would no
	// longer match the published key.
	w.signingKey = secret("AuditSigningKey", awsconfig.SigningKeySecret,
		"Warden audit signing secret: the redaction and digest signing keys are derived from it; do not change it",
		&awssecretsmanager.SecretStringGenerator{
			PasswordLength:     jsii.Number(64),
			ExcludePunctuation: jsii.Bool(true),
		})
	placeholder("AnthropicApiKey", AnthropicKeySecret, "Anthropic API key of the LLM gateway")
	placeholder("OpenAIApiKey", OpenAIKeySecret, "OpenAI API key of the LLM gateway")
	if w.cfg.Slack {
		placeholder("SlackBotToken", SlackBotTokenSecret, "Slack app bot token (xoxb-…)")
		placeholder("SlackSigningSecret", SlackSigningSecretName, "Slack app signing secret")
	}
}

// function adds a function: its own role (no managed policy), its own log
// group, its code from <functionsDir>/<name>, and the configuration it
// reads.
func (w *warden) function(name string) {
	id := strings.ToUpper(name[:1]) + name[1:]
	logs := awslogs.NewLogGroup(w.stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     retention(w.cfg.LogRetentionDays),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	w.logGroups = append(w.logGroups, logs)
	role := awsiam.NewRole(w.stack, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(fmt.Sprintf("Warden %s function (%s)", name, w.cfg.Stage)),
	})
	// Logs on the function's own group only, instead of
	// AWSLambdaBasicExecutionRole's logs:* on every group.
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("OwnLogGroup"),
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	env := map[string]*string{
		awsconfig.EnvStage:         jsii.String(w.cfg.Stage),
		awsconfig.EnvSecretsPrefix: jsii.String(SecretsPrefix(w.cfg.Stage)),
	}
	switch name {
	case "api", "llm":
		env[awsconfig.EnvIdentityTable] = w.identity.TableName()
		env[awsconfig.EnvAuditTable] = w.audit.TableName()
		env[awsconfig.EnvBudgetTable] = w.budget.TableName()
		env[awsconfig.EnvOutboxTable] = w.outbox.TableName()
		env[awsconfig.EnvPolicyBucket] = w.policy.BucketName()
		// The broker (api) issues credentials of the runtime role; a
		// session stopped by an administrator (api) or the watchdog (llm)
		// has its credentials revoked on it. The ARN its name makes: the
		// role's boundary names the functions, so the functions cannot
		// refer to the role.
		env[awsconfig.EnvRuntimeRole] = w.runtimeRoleARN()
		if name == "api" {
			env[awsconfig.EnvArchiveBucket] = w.archive.BucketName()
		}
	case "archiver":
		env[awsconfig.EnvAuditTable] = w.audit.TableName()
		env[awsconfig.EnvArchiveBucket] = w.archive.BucketName()
	case "notifier":
		// Each notification arrives whole in the outbox stream's new
		// image, and the channels' secrets are read by name. Approvals live
		// in the identity table: the Slack messages posted for one are
		// recorded with it, and updated with its outcome.
		env[awsconfig.EnvIdentityTable] = w.identity.TableName()
	case "slack", "approvals":
		// Approvals live in the identity table; decisions (slack) and
		// expiries (approvals) are appended to the audit trail. Both learn
		// the state machine's ARN from approvalsStateMachine.
		env[awsconfig.EnvIdentityTable] = w.identity.TableName()
		env[awsconfig.EnvAuditTable] = w.audit.TableName()
	case "ingest":
		// Each call is recorded under the session its source identity
		// names (identity table), in the audit trail.
		env[awsconfig.EnvIdentityTable] = w.identity.TableName()
		env[awsconfig.EnvAuditTable] = w.audit.TableName()
	}
	size := functionSizes[name]
	w.functions[name] = awslambda.NewFunction(w.stack, jsii.String(id+"Function"), &awslambda.FunctionProps{
		Description:  jsii.String(fmt.Sprintf("Warden %s (%s)", name, w.cfg.Stage)),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(w.cfg.FunctionsDir, name)), nil),
		Role:         role,
		LogGroup:     logs,
		MemorySize:   jsii.Number(float64(size.memoryMB)),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(float64(size.timeoutSeconds))),
		Environment:  &env,
	})
}

// approvalsStateMachine adds the approvals state machine (Standard: an
// approval may wait an hour or more). The api and llm functions start one
// execution per approval, named by the approval's ID, with the input
// {"approval": ID, "timeout_seconds": n}. Its task waits, through the
// approvals function, for the token it stores with the approval to be
// answered by whoever decides it (api, slack, or the approvals function
// itself when the approval was decided before the token was stored); at
// the timeout the approvals function expires the approval. Either way the
// notifier then updates the Slack messages that asked the approvers with
// the outcome.
//
//	Wait for a decision --(decided)--> Update the messages --> Decided
//	        |                                  ^
//	  States.Timeout --> Expire ---------------+
func (w *warden) approvalsStateMachine() {
	fn := w.functions["approvals"]
	retry := &sfn.RetryProps{
		Errors:      jsii.Strings(lambdaTransientErrors...),
		Interval:    awscdk.Duration_Seconds(jsii.Number(2)),
		MaxAttempts: jsii.Number(3),
		BackoffRate: jsii.Number(2),
	}
	wait := awsstepfunctionstasks.NewLambdaInvoke(w.stack, jsii.String("ApprovalsWait"), &awsstepfunctionstasks.LambdaInvokeProps{
		StateName:          jsii.String(StateWait),
		LambdaFunction:     fn,
		IntegrationPattern: sfn.IntegrationPattern_WAIT_FOR_TASK_TOKEN,
		Payload: sfn.TaskInput_FromObject(&map[string]any{
			"step":       "wait",
			"approval":   sfn.JsonPath_StringAt(jsii.String("$.approval")),
			"task_token": sfn.JsonPath_TaskToken(),
		}),
		// The approval's own timeout, from the execution's input.
		TaskTimeout: sfn.Timeout_At(jsii.String("$.timeout_seconds")),
		ResultPath:  jsii.String("$.decision"),
		// CDK's default retry (six attempts, and on
		// ClientExecutionTimeoutException too) is replaced by ours.
		RetryOnServiceExceptions: jsii.Bool(false),
	})
	wait.AddRetry(retry)
	// A plain invocation: the resource stays lambda:invoke (not the
	// function's ARN, as payloadResponseOnly would make it), the same
	// integration as the waiting task. Its result goes to $.expired, so
	// that the next state still has $.approval.
	expire := awsstepfunctionstasks.NewLambdaInvoke(w.stack, jsii.String("ApprovalsExpire"), &awsstepfunctionstasks.LambdaInvokeProps{
		StateName:      jsii.String(StateExpire),
		LambdaFunction: fn,
		Payload: sfn.TaskInput_FromObject(&map[string]any{
			"step":     "expire",
			"approval": sfn.JsonPath_StringAt(jsii.String("$.approval")),
		}),
		ResultPath:               jsii.String("$.expired"),
		RetryOnServiceExceptions: jsii.Bool(false),
	})
	expire.AddRetry(retry)
	wait.AddCatch(expire, &sfn.CatchProps{
		Errors:     jsii.Strings("States.Timeout"),
		ResultPath: jsii.String("$.timeout"),
	})
	// The notifier updates the approvers' Slack messages with the outcome
	// it reads from the approval (it holds the bot token, and posted the
	// messages): a plain invocation too, its result discarded.
	outcome := awsstepfunctionstasks.NewLambdaInvoke(w.stack, jsii.String("ApprovalsOutcome"), &awsstepfunctionstasks.LambdaInvokeProps{
		StateName:      jsii.String(StateOutcome),
		LambdaFunction: w.functions["notifier"],
		Payload: sfn.TaskInput_FromObject(&map[string]any{
			"step":     "outcome",
			"approval": sfn.JsonPath_StringAt(jsii.String("$.approval")),
		}),
		ResultPath:               sfn.JsonPath_DISCARD(),
		RetryOnServiceExceptions: jsii.Bool(false),
	})
	outcome.AddRetry(retry)
	decided := sfn.NewSucceed(w.stack, jsii.String("ApprovalsDecided"), &sfn.SucceedProps{StateName: jsii.String(StateDecided)})
	outcome.Next(decided)
	expire.Next(outcome)

	// Its own log group, errors only and without execution data (the
	// task tokens are in it). Named under /aws/vendedlogs/, as Step
	// Functions recommends, so that CloudWatch Logs' resource policy for log
	// delivery need not name each log group (it is limited in size).
	logs := awslogs.NewLogGroup(w.stack, jsii.String("ApprovalsStateMachineLogs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aws/vendedlogs/states/" + ApprovalsStateMachineName(w.cfg.Stage)),
		Retention:     retention(w.cfg.LogRetentionDays),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	w.logGroups = append(w.logGroups, logs)
	w.approvals = sfn.NewStateMachine(w.stack, jsii.String("ApprovalsStateMachine"), &sfn.StateMachineProps{
		StateMachineName: jsii.String(ApprovalsStateMachineName(w.cfg.Stage)),
		StateMachineType: sfn.StateMachineType_STANDARD,
		Comment:          jsii.String("Warden approvals: waits for each approval's decision until its timeout, then expires it, and updates the approvers' messages"),
		DefinitionBody:   sfn.DefinitionBody_FromChainable(wait.Next(outcome)),
		Logs: &sfn.LogOptions{
			Destination:          logs,
			Level:                sfn.LogLevel_ERROR,
			IncludeExecutionData: jsii.Bool(false),
		},
		TracingEnabled: jsii.Bool(false),
	})

	// The functions that start executions (api, llm) or answer the task
	// (api, slack) depend on the state machine, and so read its ARN from
	// it. The approvals function cannot (the state machine invokes it):
	// it is given the ARN the state machine's name makes.
	for _, name := range []string{"api", "llm", "slack"} {
		w.functions[name].AddEnvironment(jsii.String(awsconfig.EnvApprovalsStateMachine), w.approvals.StateMachineArn(), nil)
	}
	fn.AddEnvironment(jsii.String(awsconfig.EnvApprovalsStateMachine), w.approvalsARN(), nil)
}

// approvalsARN is the approvals state machine's ARN as its name makes it,
// for the approvals function: a reference to the state machine there
// would be a circular dependency.
func (w *warden) approvalsARN() *string {
	return w.stack.FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("states"),
		Resource:     jsii.String("stateMachine"),
		ResourceName: jsii.String(ApprovalsStateMachineName(w.cfg.Stage)),
		ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
}

// runtimeRoleARN is the agent runtime role's ARN as its name makes it, for
// the api and llm functions (their environment and their grants): a
// reference to the role there would be a circular dependency (the role's
// boundary denies the agents the functions, by reference).
func (w *warden) runtimeRoleARN() *string {
	return w.stack.FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("iam"),
		Region:       jsii.String(""),
		Resource:     jsii.String("role"),
		ResourceName: jsii.String(RuntimeRoleName(w.cfg.Stage)),
	})
}

// secretsARN is the ARN pattern of every secret under the stage's prefix.
func (w *warden) secretsARN() *string {
	return w.stack.FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("secretsmanager"),
		Resource:     jsii.String("secret"),
		ResourceName: jsii.String(SecretsPrefix(w.cfg.Stage) + "*"),
		ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
}

// permissions gives each function what it uses and nothing else.
func (w *warden) permissions() {
	allow := func(fn string, sid string, actions []string, resources ...*string) {
		w.functions[fn].Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String(sid),
			Actions:   jsii.Strings(actions...),
			Resources: &resources,
		}))
	}
	withIndexes := func(ts ...awsdynamodb.Table) []*string {
		var arns []*string
		for _, t := range ts {
			arns = append(arns, t.TableArn(), jsii.String(*t.TableArn()+"/index/*"))
		}
		return arns
	}
	// Item actions only: TransactWriteItems and TransactGetItems are
	// authorized per item by PutItem, UpdateItem, DeleteItem,
	// ConditionCheckItem and GetItem. No DeleteItem anywhere: no function
	// deletes an audit record (a lease is released by an update) or a
	// budget reservation (a settled one is marked, and TTL removes it).
	itemActions := []string{"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem",
		"dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}
	secrets := w.secretsARN()
	var policyObjects []*string
	for _, key := range []string{awsconfig.PolicyKey, awsconfig.LLMConfigKey, awsconfig.PricesKey, awsconfig.GitConfigKey} {
		policyObjects = append(policyObjects, w.policy.ArnForObjects(jsii.String(key)))
	}
	for _, fn := range []string{"api", "llm"} {
		allow(fn, "Tables", itemActions, withIndexes(w.identity, w.audit, w.budget)...)
		allow(fn, "PolicyObjects", []string{"s3:GetObject", "s3:GetObjectVersion"}, policyObjects...)
		// Without ListBucket S3 answers 403 instead of 404 for a missing
		// object, and llm.yaml and prices.yaml are optional.
		allow(fn, "PolicyBucketList", []string{"s3:ListBucket"}, w.policy.BucketArn())
		// The providers' API keys, and the key secrets llm.yaml may name
		// for custom providers: any secret under the prefix. (The api and
		// llm functions no longer send notifications themselves.)
		allow(fn, "Secrets", []string{"secretsmanager:GetSecretValue"}, secrets)
		// Notifications go out through the outbox: the functions only
		// add to it (the notifier reads the stream; TTL removes items).
		allow(fn, "Outbox", []string{"dynamodb:PutItem"}, w.outbox.TableArn())
	}
	// The admin API serves the audit archive (GET /v1/admin/audit/archive):
	// it reads and lists, never writes.
	allow("api", "ArchiveRead", []string{"s3:GetObject"}, w.archive.ArnForObjects(jsii.String("*")))
	allow("api", "ArchiveList", []string{"s3:ListBucket"}, w.archive.BucketArn())
	if arns := w.bedrockARNs(); len(arns) > 0 {
		allow("llm", "BedrockModels", []string{"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}, arns...)
	}

	archiver := w.functions["archiver"]
	archiverStream := awslambdaeventsources.NewDynamoEventSource(w.audit, &awslambdaeventsources.DynamoEventSourceProps{
		StartingPosition: awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:        jsii.Number(1000),
		// Batches of up to five seconds' records, so that a record is in
		// the chain (and the admin API's tail) seconds after it is
		// written; one batch at a time per shard, in order, retried until
		// it succeeds (the chain needs every record; IteratorAge alarms
		// when it falls behind).
		MaxBatchingWindow:     awscdk.Duration_Seconds(jsii.Number(5)),
		ParallelizationFactor: jsii.Number(1),
		// The archiver reports a batch it could not sequence as failed
		// from its first record, and the batch is retried from there
		// (shared/lambdas.Archiver).
		ReportBatchItemFailures: jsii.Bool(true),
	})
	archiver.AddEventSource(archiverStream)
	// The archiver sequences the streamed records into the hash chain,
	// stores digests and holds the archive lease: all in the audit table.
	allow("archiver", "AuditTable", itemActions, withIndexes(w.audit)...)
	allow("archiver", "ArchiveObjects", []string{"s3:GetObject", "s3:PutObject", "s3:PutObjectRetention"},
		w.archive.ArnForObjects(jsii.String("*")))
	// ListBucket: a missing key reads as 404, not 403, and the archiver
	// finds where the archive ends; the lock configuration: the archiver
	// checks at start that the bucket is write-once, and takes its default
	// retention (shared/s3store).
	allow("archiver", "ArchiveBucket", []string{"s3:GetBucketObjectLockConfiguration", "s3:ListBucket"}, w.archive.BucketArn())
	allow("archiver", "SigningKey", []string{"secretsmanager:GetSecretValue"}, w.signingKey.SecretArn())

	notifier := w.functions["notifier"]
	notifierStream := awslambdaeventsources.NewDynamoEventSource(w.outbox, &awslambdaeventsources.DynamoEventSourceProps{
		StartingPosition: awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:        jsii.Number(10),
		// No batching window: a notification goes out as soon as it is
		// written.
		MaxBatchingWindow: awscdk.Duration_Seconds(jsii.Number(0)),
		// The notifier retries each channel itself, and counts what it
		// gives up on (NotificationsFailed). A batch whose invocation fails
		// (a crash, a timeout) is split to isolate the record at fault and
		// retried at most twice: a retry resends to the channels that had
		// the message, and holds up the messages behind it. A record an
		// hour old is discarded unsent: a stuck shard must not deliver
		// stale alerts. Partial batch responses are accepted, should the
		// notifier report single records as failed.
		RetryAttempts:           jsii.Number(2),
		MaxRecordAge:            awscdk.Duration_Hours(jsii.Number(1)),
		BisectBatchOnError:      jsii.Bool(true),
		ReportBatchItemFailures: jsii.Bool(true),
		// New notifications only: expiry by TTL streams REMOVE events.
		Filters: &[]*map[string]any{
			awslambda.FilterCriteria_Filter(&map[string]any{"eventName": awslambda.FilterRule_IsEqual(jsii.String("INSERT"))}),
		},
	})
	notifier.AddEventSource(notifierStream)
	w.streams = append(w.streams, archiverStream, notifierStream)
	// The event source grants the stream reads. The policy's channels name
	// their secrets (bot tokens, webhook signing secrets): any secret under
	// the stage's prefix.
	allow("notifier", "Secrets", []string{"secretsmanager:GetSecretValue"}, secrets)
	// Approvals live in the identity table: the notifier records each
	// Slack message it posts for an approval with the approval (a
	// consistent GetItem, then a conditional PutItem), and at the outcome
	// reads the approval to update those messages. No query, no update, no
	// index; no bucket.
	allow("notifier", "IdentityTable", []string{"dynamodb:GetItem", "dynamodb:PutItem"}, w.identity.TableArn())

	// The slack function decides approvals, which live in the identity
	// table: it reads them (GetItem, Query on the table and its index) and
	// decides them with conditional writes and transactions (PutItem,
	// UpdateItem, ConditionCheckItem); a replayed Slack request is caught
	// by a conditional PutItem of its signature in the same table.
	allow("slack", "IdentityTable", []string{"dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem",
		"dynamodb:Query", "dynamodb:UpdateItem"}, withIndexes(w.identity)...)
	// A decision is appended to the audit trail (PutItem); an append
	// retried after a lost answer reads its own record back (GetItem). No
	// update, no query, no index.
	allow("slack", "AuditAppend", []string{"dynamodb:GetItem", "dynamodb:PutItem"}, w.audit.TableArn())
	// The Slack app's two secrets only (shared/slackapp): the signing
	// secret checks each request, the bot token reads the approver
	// groups' members (usergroups:read). They exist only with slack: true;
	// without them the function refuses every request. Secrets Manager
	// appends "-" and six random characters to a secret's name in its ARN.
	var slackSecrets []*string
	for _, name := range []string{SlackSigningSecretName, SlackBotTokenSecret} {
		slackSecrets = append(slackSecrets, w.stack.FormatArn(&awscdk.ArnComponents{
			Service:      jsii.String("secretsmanager"),
			Resource:     jsii.String("secret"),
			ResourceName: jsii.String(SecretsPrefix(w.cfg.Stage) + name + "-??????"),
			ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
		}))
	}
	allow("slack", "SlackSecrets", []string{"secretsmanager:GetSecretValue"}, slackSecrets...)

	// Approvals on Step Functions. The api and llm functions start an
	// approval's execution; a decision answers its waiting task: from
	// Slack (slack), from the command line (api, the admin API), or at
	// once by the approvals function when the approval was decided before
	// the task stored its token. SendTaskSuccess and SendTaskFailure name
	// only a task token, but AWS authorizes them on the state machine that
	// issued it (its ARN is the resource in their AccessDenied errors), so
	// they are granted on this state machine only, not on "*".
	taskAnswers := []string{"states:SendTaskFailure", "states:SendTaskSuccess"}
	for _, fn := range []string{"api", "llm"} {
		allow(fn, "ApprovalsStart", []string{"states:StartExecution"}, w.approvals.StateMachineArn())
	}
	for _, fn := range []string{"api", "slack"} {
		allow(fn, "ApprovalsAnswer", taskAnswers, w.approvals.StateMachineArn())
	}
	allow("approvals", "ApprovalsAnswer", taskAnswers, w.approvalsARN())
	// The approvals function stores each task's token with its approval,
	// and expires approvals: conditional writes and transactions on the
	// identity table (as the slack function decides them).
	allow("approvals", "IdentityTable", []string{"dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem",
		"dynamodb:Query", "dynamodb:UpdateItem"}, withIndexes(w.identity)...)
	// An expiry is appended to the audit trail; a retried append reads
	// its own record back. No update, no query, no index.
	allow("approvals", "AuditAppend", []string{"dynamodb:GetItem", "dynamodb:PutItem"}, w.audit.TableArn())
	// The state machine's own role: lambda:InvokeFunction on the
	// approvals and notifier functions (their ARNs and their versions'),
	// granted by the LambdaInvoke tasks; and log delivery, granted by the
	// logging options.

	// The credential broker (api) assumes the agent runtime role, setting
	// the Warden session as the source identity and tagging the session
	// with its project and agent: the three actions the role's trust
	// policy allows the api function's role.
	allow("api", "RuntimeRoleAssume", []string{"sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"}, w.runtimeRoleARN())
	// A stopped session's, agent's or project's credentials are revoked:
	// an inline policy of the runtime role per stop (named
	// awsconfig.RevocationPrefix…) denies them; at IAM's size limit the
	// expired ones are listed and deleted, and one policy denying every
	// credential issued before the newest stop is read and raised. By an
	// administrator (api) or the watchdog (llm). The role's boundary caps
	// whatever such a policy could allow.
	for _, fn := range []string{"api", "llm"} {
		allow(fn, "RuntimeRoleRevoke", []string{"iam:DeleteRolePolicy", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:PutRolePolicy"}, w.runtimeRoleARN())
	}
	// The ingest function reads the session a call's source identity
	// names (a GetItem; no query, no write, no index), and appends the
	// call to the audit trail; a retried append reads its own record back.
	allow("ingest", "IdentityTable", []string{"dynamodb:GetItem"}, w.identity.TableArn())
	allow("ingest", "AuditAppend", []string{"dynamodb:GetItem", "dynamodb:PutItem"}, w.audit.TableArn())
}

// bedrockARNs are the resources the llm function may invoke: each
// configured foundation model in the stack's region; for a cross-region
// inference profile, the profile and its model in every region the
// profile routes to (Bedrock checks both).
func (w *warden) bedrockARNs() []*string {
	var arns []*string
	for _, id := range w.cfg.BedrockModels {
		if !IsInferenceProfile(id) {
			arns = append(arns, w.stack.FormatArn(&awscdk.ArnComponents{
				Service: jsii.String("bedrock"), Account: jsii.String(""),
				Resource: jsii.String("foundation-model"), ResourceName: jsii.String(id),
			}))
			continue
		}
		_, model, _ := strings.Cut(id, ".")
		arns = append(arns,
			w.stack.FormatArn(&awscdk.ArnComponents{
				Service:  jsii.String("bedrock"),
				Resource: jsii.String("inference-profile"), ResourceName: jsii.String(id),
			}),
			w.stack.FormatArn(&awscdk.ArnComponents{
				Service: jsii.String("bedrock"), Region: jsii.String("*"), Account: jsii.String(""),
				Resource: jsii.String("foundation-model"), ResourceName: jsii.String(model),
			}))
	}
	return arns
}

// GitPathPrefix is where the git remote is served (shared/gitproxy
// mounts it at the same path), and GitStatusPath where it says which hosts
// it proxies and how large a push it takes (shared/server): both on the
// llm function, which serves the remote.
const (
	GitPathPrefix = "/git/"
	GitStatusPath = "/v1/git"
)

// GitBinaryMediaTypes are the content types of git's requests
// (shared/gitproxy's UploadPackRequest and ReceivePackRequest).
var GitBinaryMediaTypes = []string{"application/x-git-upload-pack-request", "application/x-git-receive-pack-request"}

// LLM routes: each path and method the LLM gateway registers
// (shared/llm: Gateway.Register and registerBedrock).
var llmRoutes = []struct{ method, path string }{
	{"POST", "/v1/messages"},
	{"POST", "/v1/messages/count_tokens"},
	{"GET", "/v1/models"},
	{"POST", "/v1/responses"},
	{"POST", "/v1/chat/completions"},
	{"POST", "/bedrock/model/{modelId}/invoke-with-response-stream"},
	{"POST", "/bedrock/model/{modelId}/invoke"},
	{"POST", "/bedrock/model/{modelId}/count-tokens"},
	{"GET", "/bedrock/inference-profiles"},
	{"GET", "/bedrock/inference-profiles/{id}"},
}

// restAPI adds the REST API: the LLM routes to llm, streamed; the admin
// routes to api behind IAM (SigV4); Slack's interactivity requests to
// slack, authenticated by the function (Slack's signature); every other
// /v1 route, and the health checks, to api, authenticated by the function
// (Warden tokens).
func (w *warden) restAPI() {
	accessLogs := awslogs.NewLogGroup(w.stack, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     retention(w.cfg.LogRetentionDays),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	w.logGroups = append(w.logGroups, accessLogs)
	w.api = awsapigateway.NewRestApi(w.stack, jsii.String("Api"), &awsapigateway.RestApiProps{
		RestApiName: jsii.String("warden-" + w.cfg.Stage),
		Description: jsii.String("Warden: LLM gateway, hooks, sessions and admin API"),
		EndpointConfiguration: &awsapigateway.EndpointConfiguration{
			// Regional: streamed responses may stay open 15 minutes.
			Types: &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		},
		// git's requests are binary (a pack, a gzipped negotiation): passed
		// to the function base64-encoded, byte for byte. Every other body
		// is text (JSON).
		BinaryMediaTypes:            jsii.Strings(GitBinaryMediaTypes...),
		CloudWatchRole:              jsii.Bool(w.cfg.APIGatewayCloudWatchRole),
		CloudWatchRoleRemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String(w.cfg.Stage),
			ThrottlingRateLimit:  jsii.Number(w.cfg.ThrottleRateLimit),
			ThrottlingBurstLimit: jsii.Number(float64(w.cfg.ThrottleBurstLimit)),
			MetricsEnabled:       jsii.Bool(true),
			// No execution logging: it would write request bodies and
			// headers (tokens, prompts) to the logs.
			DataTraceEnabled:     jsii.Bool(false),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat: awsapigateway.AccessLogFormat_JsonWithStandardFields(&awsapigateway.JsonWithStandardFieldProps{
				Caller: jsii.Bool(true), HttpMethod: jsii.Bool(true), Ip: jsii.Bool(true), Protocol: jsii.Bool(true),
				RequestTime: jsii.Bool(true), ResourcePath: jsii.Bool(true), ResponseLength: jsii.Bool(true),
				Status: jsii.Bool(true), User: jsii.Bool(true),
			}),
		},
	})

	// The construct's own Endpoint output would repeat ApiEndpoint.
	w.api.Node().TryRemoveChild(jsii.String("Endpoint"))

	// Every LLM route streams, the small answers too: the llm function is
	// a streaming handler (InvokeWithResponseStream), whatever the route.
	// CDK 2.276 has the typed option (no escape hatch on the CfnMethod),
	// and with it points the integration at response-streaming-invocations.
	llm := awsapigateway.NewLambdaIntegration(w.functions["llm"], &awsapigateway.LambdaIntegrationOptions{
		Proxy:                jsii.Bool(true),
		ResponseTransferMode: awsapigateway.ResponseTransferMode_STREAM,
		// A streamed integration may run up to 15 minutes.
		Timeout:         awscdk.Duration_Minutes(jsii.Number(15)),
		AllowTestInvoke: jsii.Bool(false),
	})
	api := awsapigateway.NewLambdaIntegration(w.functions["api"], &awsapigateway.LambdaIntegrationOptions{
		Proxy:           jsii.Bool(true),
		AllowTestInvoke: jsii.Bool(false),
	})
	slack := awsapigateway.NewLambdaIntegration(w.functions["slack"], &awsapigateway.LambdaIntegrationOptions{
		Proxy:           jsii.Bool(true),
		AllowTestInvoke: jsii.Bool(false),
	})
	open := &awsapigateway.MethodOptions{AuthorizationType: awsapigateway.AuthorizationType_NONE}

	for _, r := range llmRoutes {
		w.resource(r.path).AddMethod(jsii.String(r.method), llm, open)
	}
	// The git remote (shared/gitproxy, at GitPathPrefix) on the streaming
	// function: a clone or fetch streams back (Lambda streams up to 200 MB);
	// a push's request is bounded by Lambda's 6 MB request payload.
	w.resource(GitPathPrefix+"{proxy+}").AddMethod(jsii.String("ANY"), llm, open)
	w.resource(GitStatusPath).AddMethod(jsii.String("GET"), llm, open)
	w.resource("/v1/admin/{proxy+}").AddMethod(jsii.String("ANY"), api,
		&awsapigateway.MethodOptions{AuthorizationType: awsapigateway.AuthorizationType_IAM})
	// Slack signs its requests and the function checks the signature: no
	// authorization here. The literal path takes precedence over
	// /v1/{proxy+}; only POST is routed (another method is refused).
	w.resource(SlackInteractivityPath).AddMethod(jsii.String("POST"), slack, open)
	w.resource("/v1/{proxy+}").AddMethod(jsii.String("ANY"), api, open)
	w.resource("/healthz").AddMethod(jsii.String("GET"), api, open)
	w.resource("/readyz").AddMethod(jsii.String("GET"), api, open)
}

// resource returns the API resource at path, adding what is missing.
func (w *warden) resource(path string) awsapigateway.IResource {
	r := w.api.Root()
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		if child := r.GetResource(jsii.String(part)); child != nil {
			r = child
		} else {
			r = r.AddResource(jsii.String(part), nil)
		}
	}
	return r
}

// ingestRule adds the EventBridge rule (default bus) that delivers each
// AWS call made with the agent runtime role's credentials, as CloudTrail
// recorded it, to the ingest function. CloudTrail sends these events only
// while a trail logs the calls (the operator's: this stack creates none);
// they arrive in the region where the call was made.
func (w *warden) ingestRule() {
	w.ingestEvents = awsevents.NewRule(w.stack, jsii.String("IngestRule"), &awsevents.RuleProps{
		Description: jsii.String(fmt.Sprintf("Warden %s: the agent runtime role's AWS calls, as CloudTrail records them, to the ingest function", w.cfg.Stage)),
		EventPattern: &awsevents.EventPattern{
			// Only AWS services emit events whose source starts with
			// "aws." (PutEvents refuses such a source): an agent cannot
			// forge a call into the audit trail.
			Source:     awsevents.Match_Prefix(jsii.String("aws.")),
			DetailType: jsii.Strings(awsconfig.CloudTrailDetailType),
			// Calls made with the runtime role's session credentials,
			// whichever Warden session (source identity) they were
			// issued to. The ARN the role's name makes (a reference would
			// be circular: the role's boundary names this rule).
			Detail: &map[string]any{"userIdentity": map[string]any{"sessionContext": map[string]any{
				"sessionIssuer": map[string]any{"arn": []*string{w.runtimeRoleARN()}},
			}}},
		},
		// EventBridge invokes the function asynchronously: these retries
		// are of the delivery to Lambda; Lambda retries a failed
		// invocation twice itself. No dead-letter queue: the alarms on
		// the function's errors and the rule's failed invocations say
		// that a call is missing from the trail.
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(w.functions["ingest"], &awseventstargets.LambdaFunctionProps{
			RetryAttempts: jsii.Number(2),
			MaxEventAge:   awscdk.Duration_Hours(jsii.Number(1)),
		})},
	})
	// The L2 rule knows only ENABLED and DISABLED; ENABLED leaves out
	// read-only management events (an agent's Describe*, Get*, List*).
	w.ingestEvents.Node().DefaultChild().(awsevents.CfnRule).SetState(jsii.String(IngestRuleState))
}

// agentRuntimeRole adds the agent runtime role and its permissions
// boundary. The api function's broker issues short-lived credentials of
// the role to agents (sts:AssumeRole with a session policy compiled from
// the Warden policy, the Warden session as source identity, the session's
// project and agent as session tags); the api and llm functions revoke a
// stopped session's credentials with an inline policy on it. What the
// role may do at most is the managed policies of agentPolicyArns (none by
// default: nothing), within the boundary: never IAM, Organizations, the
// account or another role, never Warden's own resources, never a trail's
// logging.
func (w *warden) agentRuntimeRole() {
	// Warden's resources, which no agent may touch: the tables (their
	// indexes and streams), the buckets and their objects, the secrets,
	// the approvals state machine and its executions, the functions (their
	// versions and aliases, their permissions) and the stream event
	// sources, the log groups, the ingest rule, the alarms and their
	// topic, and the REST API (its configuration, and invoking it: the
	// admin API authorizes by IAM). Its roles and policies are IAM's,
	// denied below. The whole boundary must stay under IAM's 6,144
	// characters (TestAgentBoundarySize): "<ARN>*" is a resource and
	// everything under it (a table's indexes and stream, a bucket's
	// objects, a function's versions and aliases, a topic's
	// subscriptions) in one entry.
	under := func(arn *string) *string { return jsii.String(*arn + "*") }
	var resources []*string
	for _, t := range []awsdynamodb.Table{w.identity, w.audit, w.budget, w.outbox} {
		resources = append(resources, under(t.TableArn()))
	}
	for _, b := range []awss3.Bucket{w.policy, w.archive} {
		resources = append(resources, under(b.BucketArn()))
	}
	resources = append(resources, w.secretsARN(), w.approvals.StateMachineArn(),
		w.stack.FormatArn(&awscdk.ArnComponents{
			Service:      jsii.String("states"),
			Resource:     jsii.String("execution"),
			ResourceName: jsii.String(ApprovalsStateMachineName(w.cfg.Stage) + ":*"),
			ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
		}))
	for _, name := range Functions {
		resources = append(resources, under(w.functions[name].FunctionArn()))
	}
	for _, src := range w.streams {
		resources = append(resources, src.EventSourceMappingArn())
	}
	for _, g := range w.logGroups {
		resources = append(resources, g.LogGroupArn())
	}
	resources = append(resources, w.ingestEvents.RuleArn(), under(w.topic.TopicArn()),
		w.stack.FormatArn(&awscdk.ArnComponents{
			Service:      jsii.String("cloudwatch"),
			Resource:     jsii.String("alarm"),
			ResourceName: jsii.String(StackName(w.cfg.Stage) + "-*"),
			ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
		}),
		w.stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("apigateway"), Account: jsii.String(""),
			Resource: jsii.String("/restapis"), ResourceName: jsii.String(*w.api.RestApiId() + "*"),
		}),
		w.stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("execute-api"), Resource: w.api.RestApiId(), ResourceName: jsii.String("*"),
		}))
	w.boundary = awsiam.NewManagedPolicy(w.stack, jsii.String("AgentBoundary"), &awsiam.ManagedPolicyProps{
		ManagedPolicyName: jsii.String(AgentBoundaryName(w.cfg.Stage)),
		Description:       jsii.String(fmt.Sprintf("Warden %s: the permissions boundary of the agent runtime role", w.cfg.Stage)),
		Statements: &[]awsiam.PolicyStatement{
			// The boundary caps, it grants nothing: the role's own
			// policies (agentPolicyArns) grant, and each session policy
			// narrows them.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid: jsii.String("AtMostTheRolesPolicies"), Actions: jsii.Strings("*"), Resources: jsii.Strings("*"),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid: jsii.String("NoIdentityChanges"), Effect: awsiam.Effect_DENY,
				Actions: jsii.Strings(identityChanges...), Resources: jsii.Strings("*"),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid: jsii.String("NoTrailChanges"), Effect: awsiam.Effect_DENY,
				Actions: jsii.Strings(trailChanges...), Resources: jsii.Strings("*"),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid: jsii.String("NotWarden"), Effect: awsiam.Effect_DENY,
				Actions: jsii.Strings("*"), Resources: &resources,
			}),
		},
	})

	var managed []awsiam.IManagedPolicy
	for i, arn := range w.cfg.AgentPolicyARNs {
		managed = append(managed, awsiam.ManagedPolicy_FromManagedPolicyArn(w.stack, jsii.String(fmt.Sprintf("AgentPolicy%d", i)), jsii.String(arn)))
	}
	// Trusted by the api function's role alone (the broker), not the
	// account: AssumeRole and SetSourceIdentity only with a source identity
	// (the Warden session: every call the credentials make names it in
	// CloudTrail, and revocation denies it), TagSession only with
	// Warden's two tags.
	broker := awsiam.NewArnPrincipal(w.functions["api"].Role().RoleArn())
	withSourceIdentity := &map[string]any{"StringLike": map[string]any{"sts:SourceIdentity": "*"}}
	w.runtimeRole = awsiam.NewRole(w.stack, jsii.String("AgentRuntimeRole"), &awsiam.RoleProps{
		RoleName:            jsii.String(RuntimeRoleName(w.cfg.Stage)),
		Description:         jsii.String(fmt.Sprintf("Warden %s: the agents' AWS credentials, issued by the broker with a session policy per Warden session", w.cfg.Stage)),
		AssumedBy:           awsiam.NewPrincipalWithConditions(broker, withSourceIdentity),
		MaxSessionDuration:  awscdk.Duration_Seconds(jsii.Number(RuntimeRoleMaxSession)),
		PermissionsBoundary: w.boundary,
		ManagedPolicies:     &managed,
	})
	w.runtimeRole.AssumeRolePolicy().AddStatements(
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Principals: &[]awsiam.IPrincipal{broker}, Actions: jsii.Strings("sts:SetSourceIdentity"), Conditions: withSourceIdentity,
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Principals: &[]awsiam.IPrincipal{broker}, Actions: jsii.Strings("sts:TagSession"),
			Conditions: &map[string]any{"ForAllValues:StringEquals": map[string]any{"aws:TagKeys": RuntimeSessionTags}},
		}),
	)
}

// alarms adds, all to one SNS topic: errors and throttles of each
// function, the archiver falling behind its stream, budget alerts and
// notifications the notifier gave up on (the functions' custom metrics,
// awsconfig.MetricsNamespace by stage), and failed executions of the
// approvals state machine.
func (w *warden) alarms() {
	w.topic = awssns.NewTopic(w.stack, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Warden " + w.cfg.Stage + " alarms"),
	})
	if w.cfg.AlarmEmail != "" {
		w.topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(w.cfg.AlarmEmail), nil))
	}
	action := awscloudwatchactions.NewSnsAction(w.topic)
	alarm := func(id, description string, metric awscloudwatch.IMetric, threshold float64) {
		a := awscloudwatch.NewAlarm(w.stack, jsii.String(id), &awscloudwatch.AlarmProps{
			// Named under the stack's name, so that the agent boundary
			// covers them all with one ARN pattern.
			AlarmName:          jsii.String(StackName(w.cfg.Stage) + "-" + id),
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(action)
	}
	five := awscdk.Duration_Minutes(jsii.Number(5))
	for _, name := range Functions {
		fn := w.functions[name]
		id := strings.ToUpper(name[:1]) + name[1:]
		alarm(id+"Errors", fmt.Sprintf("Warden %s: the %s function failed", w.cfg.Stage, name),
			fn.MetricErrors(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}), 1)
		alarm(id+"Throttles", fmt.Sprintf("Warden %s: the %s function was throttled", w.cfg.Stage, name),
			fn.MetricThrottles(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}), 1)
	}
	alarm("ArchiverIteratorAge", fmt.Sprintf("Warden %s: the audit archiver is more than an hour behind the audit stream (records leave the stream after 24 hours)", w.cfg.Stage),
		w.functions["archiver"].Metric(jsii.String("IteratorAge"), &awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Maximum")}),
		3600_000)
	custom := func(name string) awscloudwatch.IMetric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     jsii.String(awsconfig.MetricsNamespace),
			MetricName:    jsii.String(name),
			DimensionsMap: &map[string]*string{awsconfig.MetricsDimension: jsii.String(w.cfg.Stage)},
			Period:        five,
			Statistic:     jsii.String("Sum"),
		})
	}
	alarm("BudgetAlerts", fmt.Sprintf("Warden %s: a budget crossed an alert threshold", w.cfg.Stage),
		custom(awsconfig.MetricBudgetAlerts), 1)
	alarm("NotificationsFailed", fmt.Sprintf("Warden %s: the notifier gave up on a notification (see its logs for the channel and the error)", w.cfg.Stage),
		custom(awsconfig.MetricNotificationsFailed), 1)
	// A failed execution is an approval that was not expired (the
	// approvals function failed on it after the retries), or whose task
	// failed: the approval may stay pending until someone decides it; or
	// one whose messages the notifier failed to update: they still ask for
	// a decision already made.
	// The ingest function's own failures are the Errors alarm above (a
	// failed event is retried twice by Lambda, then dropped); this one is
	// EventBridge giving up on delivering an event to it.
	alarm("IngestRuleFailedInvocations", fmt.Sprintf("Warden %s: EventBridge failed to deliver an AWS call of the agents to the ingest function: it is missing from the audit trail", w.cfg.Stage),
		awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     jsii.String("AWS/Events"),
			MetricName:    jsii.String("FailedInvocations"),
			DimensionsMap: &map[string]*string{"RuleName": w.ingestEvents.RuleName()},
			Period:        five,
			Statistic:     jsii.String("Sum"),
		}), 1)
	alarm("ApprovalsExecutionsFailed", fmt.Sprintf("Warden %s: an approval's state machine execution failed (see the approvals and notifier functions' logs and the execution's history)", w.cfg.Stage),
		w.approvals.MetricFailed(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}), 1)
}

// outputs adds what an operator and the agents' setup need.
func (w *warden) outputs() {
	out := func(id, description string, value *string) {
		awscdk.NewCfnOutput(w.stack, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(description)})
	}
	out("ApiEndpoint", "Warden's endpoint (warden agent setup --endpoint)", w.api.Url())
	// The stage's URL without the trailing slash: clients append /v1/messages.
	out("LlmUrl", "base URL of the LLM gateway: ANTHROPIC_BASE_URL; OpenAI base URL <LlmUrl>/v1; Bedrock <LlmUrl>/bedrock",
		awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("https://"), w.api.RestApiId(), jsii.String(".execute-api."), awscdk.Aws_REGION(),
			jsii.String("."), awscdk.Aws_URL_SUFFIX(), jsii.String("/"), w.api.DeploymentStage().StageName(),
		}))
	out("SlackInteractivityUrl", "Slack's Request URL (the Slack app's Interactivity & Shortcuts settings)",
		w.api.UrlForPath(jsii.String(SlackInteractivityPath)))
	out("PolicyBucketName", "policy bucket ("+awsconfig.PolicyKey+", "+awsconfig.LLMConfigKey+", "+awsconfig.PricesKey+", "+awsconfig.GitConfigKey+")", w.policy.BucketName())
	out("ArchiveBucketName", "audit archive bucket (Object Lock, COMPLIANCE)", w.archive.BucketName())
	out("IdentityTableName", "identity table", w.identity.TableName())
	out("AuditTableName", "audit table", w.audit.TableName())
	out("BudgetTableName", "budget table", w.budget.TableName())
	out("SecretsPrefix", "Secrets Manager prefix of the stage's secrets", jsii.String(SecretsPrefix(w.cfg.Stage)))
	out("AlarmTopicArn", "SNS topic of the alarms", w.topic.TopicArn())
	out("ApprovalsStateMachineArn", "approvals state machine (one execution per approval, named by its ID)", w.approvals.StateMachineArn())
	out("RuntimeRoleArn", "agent runtime role: the role of the AWS credentials the broker issues to agents", w.runtimeRole.RoleArn())
}

// retention maps a validated number of days to CDK's enumeration.
func retention(days int) awslogs.RetentionDays {
	enums := []awslogs.RetentionDays{
		awslogs.RetentionDays_ONE_DAY, awslogs.RetentionDays_THREE_DAYS, awslogs.RetentionDays_FIVE_DAYS,
		awslogs.RetentionDays_ONE_WEEK, awslogs.RetentionDays_TWO_WEEKS, awslogs.RetentionDays_ONE_MONTH,
		awslogs.RetentionDays_TWO_MONTHS, awslogs.RetentionDays_THREE_MONTHS, awslogs.RetentionDays_FOUR_MONTHS,
		awslogs.RetentionDays_FIVE_MONTHS, awslogs.RetentionDays_SIX_MONTHS, awslogs.RetentionDays_ONE_YEAR,
		awslogs.RetentionDays_THIRTEEN_MONTHS, awslogs.RetentionDays_EIGHTEEN_MONTHS, awslogs.RetentionDays_TWO_YEARS,
		awslogs.RetentionDays_THREE_YEARS, awslogs.RetentionDays_FIVE_YEARS, awslogs.RetentionDays_SIX_YEARS,
		awslogs.RetentionDays_SEVEN_YEARS, awslogs.RetentionDays_EIGHT_YEARS, awslogs.RetentionDays_NINE_YEARS,
		awslogs.RetentionDays_TEN_YEARS,
	}
	return enums[slices.Index(logRetentions, days)]
}
