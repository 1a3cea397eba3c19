package main

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/wardenhq/warden/shared/awsconfig"
)

var (
	match   = assertions.Match_ObjectLike
	exactly = assertions.Match_ObjectEquals
	absent  = assertions.Match_Absent
)

func TestTables(t *testing.T) {
	st := defaultStack(t)
	if n := len(st.resources("AWS::DynamoDB::Table")); n != 4 {
		t.Fatalf("%d tables, want 4", n)
	}
	gsi1 := awsconfig.Index{Name: awsconfig.IndexGSI1, PK: awsconfig.AttrGSI1PK, SK: awsconfig.AttrGSI1SK}
	gsi2 := awsconfig.Index{Name: awsconfig.IndexGSI2, PK: awsconfig.AttrGSI2PK, SK: awsconfig.AttrGSI2SK}
	for _, tbl := range []struct {
		name   string // the logical ID without CDK's hash
		output string // the output that names the table; none for the outbox, which only the functions use
		// The indexes the adapters query: sessions by creation; audit
		// records by Seq and by session; none on the budget table and the
		// outbox.
		indexes []awsconfig.Index
		// The audit table streams to the archiver, the outbox to the
		// notifier: new images, all that either reads.
		stream bool
	}{
		{"IdentityTable", "IdentityTableName", []awsconfig.Index{gsi1}, false},
		{"AuditTable", "AuditTableName", []awsconfig.Index{gsi1, gsi2}, true},
		{"BudgetTable", "BudgetTableName", nil, false},
		{"OutboxTable", "", nil, true},
	} {
		id := st.logicalID(t, "AWS::DynamoDB::Table", tbl.name)
		if tbl.output != "" {
			if ref := st.outputRef(t, tbl.output); ref != id {
				t.Errorf("output %s names %s, want %s", tbl.output, ref, id)
			}
		}
		tmpl := st.only(t, id)
		attrs := []any{
			map[string]any{"AttributeName": awsconfig.AttrPK, "AttributeType": "S"},
			map[string]any{"AttributeName": awsconfig.AttrSK, "AttributeType": "S"},
		}
		var gsis []any
		for _, ix := range tbl.indexes {
			attrs = append(attrs,
				map[string]any{"AttributeName": ix.PK, "AttributeType": "S"},
				map[string]any{"AttributeName": ix.SK, "AttributeType": "S"})
			gsis = append(gsis, exactly(&map[string]any{
				"IndexName": ix.Name,
				"KeySchema": []any{
					map[string]any{"AttributeName": ix.PK, "KeyType": "HASH"},
					map[string]any{"AttributeName": ix.SK, "KeyType": "RANGE"},
				},
				"Projection": map[string]any{"ProjectionType": "ALL"},
			}))
		}
		var gsiMatch any = absent()
		if gsis != nil {
			gsiMatch = assertions.Match_ArrayEquals(&gsis)
		}
		must(t, tbl.name+" schema and settings", func() {
			tmpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), match(&map[string]any{
				"KeySchema": []any{
					map[string]any{"AttributeName": awsconfig.AttrPK, "KeyType": "HASH"},
					map[string]any{"AttributeName": awsconfig.AttrSK, "KeyType": "RANGE"},
				},
				"AttributeDefinitions":             assertions.Match_ArrayEquals(&attrs),
				"GlobalSecondaryIndexes":           gsiMatch,
				"LocalSecondaryIndexes":            absent(),
				"BillingMode":                      "PAY_PER_REQUEST",
				"ProvisionedThroughput":            absent(),
				"PointInTimeRecoverySpecification": exactly(&map[string]any{"PointInTimeRecoveryEnabled": true}),
				"TimeToLiveSpecification":          exactly(&map[string]any{"AttributeName": awsconfig.AttrTTL, "Enabled": true}),
				// SSE enabled with no key named: the AWS managed key aws/dynamodb.
				"SSESpecification":          exactly(&map[string]any{"SSEEnabled": true}),
				"DeletionProtectionEnabled": true,
			}))
		})
		must(t, tbl.name+" retained", func() {
			tmpl.HasResource(jsii.String("AWS::DynamoDB::Table"), match(&map[string]any{
				"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
			}))
		})
		stream := absent()
		if tbl.stream {
			stream = exactly(&map[string]any{"StreamViewType": "NEW_IMAGE"})
		}
		must(t, tbl.name+" stream", func() {
			tmpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), match(&map[string]any{"StreamSpecification": stream}))
		})
	}
	// The audit table's stream feeds the archiver, from the oldest record,
	// one batch at a time per shard (the outbox's: TestNotifierEventSource).
	must(t, "archiver event source", func() {
		st.template.ResourceCountIs(jsii.String("AWS::Lambda::EventSourceMapping"), jsii.Number(2))
		st.template.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), match(&map[string]any{
			"EventSourceArn":        map[string]any{"Fn::GetAtt": []any{st.outputRef(t, "AuditTableName"), "StreamArn"}},
			"FunctionName":          map[string]any{"Ref": st.functionID(t, "archiver")},
			"StartingPosition":      "TRIM_HORIZON",
			"ParallelizationFactor": 1,
			"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
			// Sequenced within seconds of being written.
			"MaximumBatchingWindowInSeconds": 5,
		}))
	})
}

// TestNotifierEventSource: the outbox's stream feeds the notifier, new
// notifications only, at once, in small batches, retried twice and never
// more than an hour late.
func TestNotifierEventSource(t *testing.T) {
	st := defaultStack(t)
	fn := st.functionID(t, "notifier")
	var ids []string
	for id, r := range st.resources("AWS::Lambda::EventSourceMapping") {
		if render(r["Properties"].(map[string]any)["FunctionName"]) == "${"+friendly(fn)+"}" {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d event source mappings invoke the notifier, want 1", len(ids))
	}
	props := st.resource(t, ids[0])["Properties"].(map[string]any)
	// No batching window: absent and 0 both mean none.
	if w, ok := props["MaximumBatchingWindowInSeconds"]; ok && w != float64(0) {
		t.Errorf("MaximumBatchingWindowInSeconds %v, want none: a notification goes out at once", w)
	}
	must(t, "notifier event source", func() {
		st.only(t, ids[0]).HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), match(&map[string]any{
			"EventSourceArn":   map[string]any{"Fn::GetAtt": []any{st.logicalID(t, "AWS::DynamoDB::Table", "OutboxTable"), "StreamArn"}},
			"StartingPosition": "TRIM_HORIZON",
			"BatchSize":        10,
			// A failing notification is retried twice, its batch split to
			// isolate it; the notifier reports the records it failed.
			"MaximumRetryAttempts":       2,
			"BisectBatchOnFunctionError": true,
			"FunctionResponseTypes":      []any{"ReportBatchItemFailures"},
			// A stuck shard does not send hour-old alerts.
			"MaximumRecordAgeInSeconds": 3600,
			// INSERT only: TTL expiry streams REMOVE events.
			"FilterCriteria":          exactly(&map[string]any{"Filters": []any{exactly(&map[string]any{"Pattern": `{"eventName":["INSERT"]}`})}}),
			"TumblingWindowInSeconds": absent(),
			"DestinationConfig":       absent(),
		}))
	})
}

func TestPolicyBucket(t *testing.T) {
	st := defaultStack(t)
	id := st.outputRef(t, "PolicyBucketName")
	checkBucketBasics(t, st, id)
	must(t, "no Object Lock on the policy bucket", func() {
		st.only(t, id).HasResourceProperties(jsii.String("AWS::S3::Bucket"), match(&map[string]any{
			"ObjectLockEnabled": absent(), "ObjectLockConfiguration": absent(),
		}))
	})
}

func TestArchiveBucket(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   func(*testing.T) *stackTemplate
		days int
	}{{"default", defaultStack, 365}, {"configured", fullStack, 2555}} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st(t)
			id := st.outputRef(t, "ArchiveBucketName")
			checkBucketBasics(t, st, id)
			must(t, "Object Lock COMPLIANCE", func() {
				st.only(t, id).HasResourceProperties(jsii.String("AWS::S3::Bucket"), match(&map[string]any{
					"ObjectLockEnabled": true,
					"ObjectLockConfiguration": exactly(&map[string]any{
						"ObjectLockEnabled": "Enabled",
						"Rule": map[string]any{"DefaultRetention": exactly(&map[string]any{
							"Mode": "COMPLIANCE", "Days": tc.days,
						})},
					}),
				}))
			})
			// Deletes are denied to every principal, on every object.
			must(t, "delete deny", func() {
				st.template.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), match(&map[string]any{
					"Bucket": map[string]any{"Ref": id},
					"PolicyDocument": match(&map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{exactly(&map[string]any{
						"Sid":       "DenyDeletes",
						"Effect":    "Deny",
						"Principal": map[string]any{"AWS": "*"},
						"Action":    []any{"s3:DeleteObject", "s3:DeleteObjectVersion"},
						"Resource":  map[string]any{"Fn::Join": []any{"", []any{map[string]any{"Fn::GetAtt": []any{id, "Arn"}}, "/*"}}},
					})})}),
				}))
			})
		})
	}
}

// checkBucketBasics: versioned, encrypted, public access blocked,
// retained, and a bucket policy that refuses every request without TLS.
func checkBucketBasics(t *testing.T, st *stackTemplate, id string) {
	t.Helper()
	tmpl := st.only(t, id)
	must(t, id+" settings", func() {
		tmpl.HasResourceProperties(jsii.String("AWS::S3::Bucket"), match(&map[string]any{
			"VersioningConfiguration": exactly(&map[string]any{"Status": "Enabled"}),
			"BucketEncryption": exactly(&map[string]any{"ServerSideEncryptionConfiguration": []any{
				map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}},
			}}),
			"PublicAccessBlockConfiguration": exactly(&map[string]any{
				"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
			}),
		}))
		tmpl.HasResource(jsii.String("AWS::S3::Bucket"), match(&map[string]any{
			"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
		}))
	})
	arn := map[string]any{"Fn::GetAtt": []any{id, "Arn"}}
	must(t, id+" TLS only", func() {
		st.template.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), match(&map[string]any{
			"Bucket": map[string]any{"Ref": id},
			"PolicyDocument": match(&map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{exactly(&map[string]any{
				"Effect":    "Deny",
				"Principal": map[string]any{"AWS": "*"},
				"Action":    "s3:*",
				"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				"Resource":  []any{arn, map[string]any{"Fn::Join": []any{"", []any{arn, "/*"}}}},
			})})}),
		}))
	})
	// No bucket policy statement allows anything: the functions' access is
	// in their roles.
	for pid, p := range st.resources("AWS::S3::BucketPolicy") {
		for _, s := range p["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			if s.(map[string]any)["Effect"] != "Deny" {
				t.Errorf("bucket policy %s allows: %v", pid, s)
			}
		}
	}
}

func TestSecrets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		st    func(*testing.T) *stackTemplate
		names []string
	}{
		{"default", defaultStack, []string{"warden/dev/anthropic-api-key", "warden/dev/audit-signing-key", "warden/dev/openai-api-key"}},
		{"slack", fullStack, []string{"warden/prod/anthropic-api-key", "warden/prod/audit-signing-key", "warden/prod/openai-api-key",
			"warden/prod/slack-bot-token", "warden/prod/slack-signing-secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st(t)
			var names []string
			for id, s := range st.resources("AWS::SecretsManager::Secret") {
				p := s["Properties"].(map[string]any)
				names = append(names, p["Name"].(string))
				if p["GenerateSecretString"] == nil || p["SecretString"] != nil {
					t.Errorf("secret %s: want a generated value and no value in the template", id)
				}
				if s["DeletionPolicy"] != "Retain" {
					t.Errorf("secret %s: DeletionPolicy %v, want Retain", id, s["DeletionPolicy"])
				}
			}
			sort.Strings(names)
			if !slices.Equal(names, tc.names) {
				t.Errorf("secrets %q, want %q", names, tc.names)
			}
			prefix := SecretsPrefix(st.cfg.Stage)
			must(t, "signing secret: 64 letters and digits", func() {
				st.template.HasResourceProperties(jsii.String("AWS::SecretsManager::Secret"), match(&map[string]any{
					"Name":                 prefix + awsconfig.SigningKeySecret,
					"GenerateSecretString": exactly(&map[string]any{"PasswordLength": 64, "ExcludePunctuation": true}),
				}))
			})
			for _, fn := range Functions {
				must(t, fn+" secrets prefix", func() {
					st.only(t, st.functionID(t, fn)).HasResourceProperties(jsii.String("AWS::Lambda::Function"), match(&map[string]any{
						"Environment": map[string]any{"Variables": match(&map[string]any{awsconfig.EnvSecretsPrefix: prefix})},
					}))
				})
			}
		})
	}
}

func TestFunctions(t *testing.T) {
	st := defaultStack(t)
	// Each function's variables besides the stage and the secrets prefix,
	// and the resource each names. The notifier reads the notifications
	// from the outbox stream's images, and records the Slack messages it
	// posts for an approval with the approval (identity table). The slack
	// function decides approvals (identity table) and audits the decisions;
	// the approvals function stores task tokens with them and expires them
	// (identity table), and audits the expiries. Every function that uses
	// the approvals state machine has its ARN. The ingest function reads
	// the session a call's source identity names (identity table) and
	// appends the call to the audit trail. The broker (api) issues
	// credentials of the runtime role, and the api and llm functions
	// revoke them there.
	env := map[string]map[string]string{
		"api":       {awsconfig.EnvPolicyBucket: "PolicyBucket", awsconfig.EnvArchiveBucket: "ArchiveBucket"},
		"llm":       {awsconfig.EnvPolicyBucket: "PolicyBucket"},
		"archiver":  {awsconfig.EnvAuditTable: "AuditTable", awsconfig.EnvArchiveBucket: "ArchiveBucket"},
		"notifier":  {awsconfig.EnvIdentityTable: "IdentityTable"},
		"slack":     {awsconfig.EnvIdentityTable: "IdentityTable", awsconfig.EnvAuditTable: "AuditTable"},
		"approvals": {awsconfig.EnvIdentityTable: "IdentityTable", awsconfig.EnvAuditTable: "AuditTable"},
		"ingest":    {awsconfig.EnvIdentityTable: "IdentityTable", awsconfig.EnvAuditTable: "AuditTable"},
	}
	for _, fn := range []string{"api", "llm"} {
		env[fn][awsconfig.EnvIdentityTable] = "IdentityTable"
		env[fn][awsconfig.EnvAuditTable] = "AuditTable"
		env[fn][awsconfig.EnvBudgetTable] = "BudgetTable"
		env[fn][awsconfig.EnvOutboxTable] = "OutboxTable"
		env[fn][awsconfig.EnvRuntimeRole] = "RuntimeRole"
	}
	for _, fn := range []string{"api", "llm", "slack", "approvals"} {
		env[fn][awsconfig.EnvApprovalsStateMachine] = "ApprovalsStateMachine"
	}
	size := map[string]struct{ memory, timeout int }{
		"api": {512, 29}, "llm": {1024, 900}, "archiver": {512, 300}, "notifier": {256, 120}, "slack": {256, 10},
		"approvals": {256, 30}, "ingest": {256, 30},
	}
	if n := len(st.resources("AWS::Lambda::Function")); n != 7 {
		t.Errorf("%d functions, want 7", n)
	}
	for _, fn := range Functions {
		id := st.functionID(t, fn)
		vars := map[string]any{awsconfig.EnvStage: "dev", awsconfig.EnvSecretsPrefix: "warden/dev/"}
		for name, resource := range env[fn] {
			switch {
			case resource == "ApprovalsStateMachine" && fn == "approvals":
				// The ARN the state machine's name makes: the state
				// machine invokes the function, so the function cannot
				// refer to it (TestApprovalsStateMachineARN).
				vars[name] = assertions.Match_AnyValue()
			case resource == "ApprovalsStateMachine":
				vars[name] = map[string]any{"Ref": st.logicalID(t, "AWS::StepFunctions::StateMachine", resource)}
			case resource == "RuntimeRole":
				// The ARN the role's name makes (TestRuntimeRoleARN): the
				// role's boundary names the functions.
				vars[name] = runtimeRoleARNValue(st.cfg.Stage)
			case strings.HasSuffix(resource, "Bucket"):
				vars[name] = map[string]any{"Ref": st.logicalID(t, "AWS::S3::Bucket", resource)}
			default:
				vars[name] = map[string]any{"Ref": st.logicalID(t, "AWS::DynamoDB::Table", resource)}
			}
		}
		must(t, fn, func() {
			st.only(t, id).HasResourceProperties(jsii.String("AWS::Lambda::Function"), match(&map[string]any{
				"Runtime":       "provided.al2023",
				"Architectures": []any{"arm64"},
				"Handler":       "bootstrap",
				"MemorySize":    size[fn].memory,
				"Timeout":       size[fn].timeout,
				// Exactly the variables the function uses.
				"Environment":   exactly(&map[string]any{"Variables": exactly(&vars)}),
				"LoggingConfig": exactly(&map[string]any{"LogGroup": map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^" + strings.ToUpper(fn[:1]) + fn[1:] + "Logs"))}}),
				"Role":          map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("^" + strings.ToUpper(fn[:1]) + fn[1:] + "Role")), "Arn"}},
			}))
		})
	}
	// Each function's log group, the API's access log and the approvals
	// state machine's log keep 90 days.
	must(t, "log groups", func() {
		st.template.ResourcePropertiesCountIs(jsii.String("AWS::Logs::LogGroup"), match(&map[string]any{"RetentionInDays": 90}), jsii.Number(9))
		st.template.ResourceCountIs(jsii.String("AWS::Logs::LogGroup"), jsii.Number(9))
	})
	must(t, "configured log retention", func() {
		fullStack(t).template.ResourcePropertiesCountIs(jsii.String("AWS::Logs::LogGroup"), match(&map[string]any{"RetentionInDays": 365}), jsii.Number(9))
	})
}

// awsRequiresStar lists the only actions that may be granted on resource
// "*", each because AWS defines no resource for it.
var awsRequiresStar = map[string]string{
	// Lambda's event source mapping lists the table's streams; ListStreams
	// has no resource-level permissions (added by each DynamoEventSource:
	// the archiver's and the notifier's).
	"dynamodb:ListStreams": "no resource type: IAM requires Resource *",
	// The approvals state machine's role, for its logging to CloudWatch
	// Logs (added by the state machine's logging options): Step Functions
	// sets up the log delivery with these, and documents them on Resource
	// "*" (cw-logs.html, "IAM policies for logging to CloudWatch Logs");
	// without them the state machine is not created ("The state machine
	// IAM Role is not authorized to access the Log Destination").
	"logs:CreateLogDelivery":        stepFunctionsLogDelivery,
	"logs:GetLogDelivery":           stepFunctionsLogDelivery,
	"logs:UpdateLogDelivery":        stepFunctionsLogDelivery,
	"logs:DeleteLogDelivery":        stepFunctionsLogDelivery,
	"logs:ListLogDeliveries":        stepFunctionsLogDelivery,
	"logs:PutResourcePolicy":        stepFunctionsLogDelivery,
	"logs:DescribeResourcePolicies": stepFunctionsLogDelivery,
	"logs:DescribeLogGroups":        stepFunctionsLogDelivery,
}

const stepFunctionsLogDelivery = "Step Functions' log delivery: documented on Resource *; the state machine's role only"

// stateMachineRole is the approvals state machine's role, as the identity
// policies name it.
const stateMachineRole = "${ApprovalsStateMachineRole}"

// TestLeastPrivilege walks every identity policy in the template: no
// action with a wildcard, no resource "*" except where AWS requires it,
// no managed policy on a function's role, and each role holds exactly the
// grants listed here. The agent runtime role's permissions boundary caps,
// it grants nothing (TestAgentBoundary checks it whole); the runtime role
// holds the managed policies of agentPolicyArns and nothing else.
func TestLeastPrivilege(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   func(*testing.T) *stackTemplate
	}{{"default", defaultStack}, {"full", fullStack}} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st(t)
			byRole := st.identityStatements()
			if len(byRole) == 0 {
				t.Fatal("no identity policies found")
			}
			// The boundary is attached to no principal: it is not a grant.
			boundary := "(no role) " + st.logicalID(t, "AWS::IAM::ManagedPolicy", "AgentBoundary")
			if len(byRole[boundary]) == 0 {
				t.Errorf("the agent boundary is missing, or attached to a principal")
			}
			for role, stmts := range byRole {
				if role == boundary {
					continue
				}
				for _, s := range stmts {
					for _, a := range s.actions {
						if strings.Contains(a, "*") || !strings.Contains(a, ":") {
							t.Errorf("%s (%s): action %q is a wildcard", s.where, role, a)
						}
					}
					for _, r := range s.resources {
						if r != "*" {
							continue
						}
						for _, a := range s.actions {
							if _, ok := awsRequiresStar[a]; !ok {
								t.Errorf("%s (%s): %s on resource *", s.where, role, a)
							}
						}
					}
				}
			}
			runtime := st.logicalID(t, "AWS::IAM::Role", "AgentRuntimeRole")
			for id, r := range st.resources("AWS::IAM::Role") {
				managed := stringList(r["Properties"].(map[string]any)["ManagedPolicyArns"])
				switch {
				// What agents may do at most: the operator's choice.
				case id == runtime:
					if !slices.Equal(managed, st.cfg.AgentPolicyARNs) {
						t.Errorf("runtime role's managed policies %q, want agentPolicyArns %q", managed, st.cfg.AgentPolicyARNs)
					}
				case len(managed) == 0:
				// API Gateway's account-wide role for writing logs: AWS's own
				// policy, the documented way (it is no function's role).
				case friendly(id) == "ApiCloudWatchRole" && slices.Equal(managed,
					[]string{"arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}):
				default:
					t.Errorf("role %s has managed policies %q", id, managed)
				}
			}
			checked := map[string]bool{}
			for _, fn := range Functions {
				got := grants(byRole[roleRef(fn)])
				want := expectedGrants(st.cfg, fn)
				sort.Strings(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s grants:\n%s\nwant:\n%s\nextra: %q\nmissing: %q", fn, strings.Join(got, "\n"), strings.Join(want, "\n"),
						minus(got, want), minus(want, got))
				}
				checked[roleRef(fn)] = true
			}
			// The approvals state machine invokes the approvals and the
			// notifier functions (their ARNs, and their versions' and
			// aliases' as ARN:qualifier: LambdaInvoke's grant), and no
			// other, and delivers its logs.
			want := []string{"lambda:InvokeFunction ${ApprovalsFunction.Arn}", "lambda:InvokeFunction ${ApprovalsFunction.Arn}:*",
				"lambda:InvokeFunction ${NotifierFunction.Arn}", "lambda:InvokeFunction ${NotifierFunction.Arn}:*"}
			for a, why := range awsRequiresStar {
				if why == stepFunctionsLogDelivery {
					want = append(want, a+" *")
				}
			}
			sort.Strings(want)
			if got := grants(byRole[stateMachineRole]); !slices.Equal(got, want) {
				t.Errorf("approvals state machine grants:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			checked[stateMachineRole] = true
			checked[boundary] = true
			// The log delivery actions on "*" are the state machine's alone.
			for role, stmts := range byRole {
				if !checked[role] {
					t.Errorf("role %s has identity policies this test does not check: %q", role, grants(stmts))
				}
				if role == stateMachineRole {
					continue
				}
				for _, g := range grants(stmts) {
					if a, _, _ := strings.Cut(g, " "); awsRequiresStar[a] == stepFunctionsLogDelivery {
						t.Errorf("%s: %s (log delivery is the state machine's)", role, g)
					}
				}
			}
		})
	}
}

// expectedGrants is every "action resource" a function's role may hold.
func expectedGrants(cfg Config, fn string) []string {
	var out []string
	grant := func(actions []string, resources ...string) {
		for _, a := range actions {
			for _, r := range resources {
				out = append(out, a+" "+r)
			}
		}
	}
	logGroup := "${" + strings.ToUpper(fn[:1]) + fn[1:] + "Logs.Arn}"
	grant([]string{"logs:CreateLogStream", "logs:PutLogEvents"}, logGroup)
	items := []string{"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem",
		"dynamodb:Query", "dynamodb:UpdateItem"}
	switch fn {
	case "api", "llm":
		var tables []string
		for _, tbl := range []string{"IdentityTable", "AuditTable", "BudgetTable"} {
			tables = append(tables, "${"+tbl+".Arn}", "${"+tbl+".Arn}/index/*")
		}
		grant(items, tables...)
		grant([]string{"dynamodb:PutItem"}, "${OutboxTable.Arn}")
		grant([]string{"s3:GetObject", "s3:GetObjectVersion"}, "${PolicyBucket.Arn}/"+awsconfig.PolicyKey,
			"${PolicyBucket.Arn}/"+awsconfig.LLMConfigKey, "${PolicyBucket.Arn}/"+awsconfig.PricesKey, "${PolicyBucket.Arn}/"+awsconfig.GitConfigKey)
		grant([]string{"s3:ListBucket"}, "${PolicyBucket.Arn}")
		grant([]string{"secretsmanager:GetSecretValue"},
			"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"+SecretsPrefix(cfg.Stage)+"*")
		if fn == "api" {
			// The admin API serves the archive: read only.
			grant([]string{"s3:GetObject"}, "${ArchiveBucket.Arn}/*")
			grant([]string{"s3:ListBucket"}, "${ArchiveBucket.Arn}")
		}
		if fn == "llm" {
			for _, id := range cfg.BedrockModels {
				var arns []string
				if IsInferenceProfile(id) {
					_, model, _ := strings.Cut(id, ".")
					arns = []string{"arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/" + id,
						"arn:${AWS::Partition}:bedrock:*::foundation-model/" + model}
				} else {
					arns = []string{"arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/" + id}
				}
				grant([]string{"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}, arns...)
			}
		}
	case "archiver":
		grant(items, "${AuditTable.Arn}", "${AuditTable.Arn}/index/*")
		grant([]string{"dynamodb:ListStreams"}, "*")
		grant([]string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}, "${AuditTable.StreamArn}")
		grant([]string{"s3:GetObject", "s3:PutObject", "s3:PutObjectRetention"}, "${ArchiveBucket.Arn}/*")
		grant([]string{"s3:GetBucketObjectLockConfiguration", "s3:ListBucket"}, "${ArchiveBucket.Arn}")
		grant([]string{"secretsmanager:GetSecretValue"}, "${AuditSigningKey}")
	case "notifier":
		grant([]string{"dynamodb:ListStreams"}, "*")
		grant([]string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}, "${OutboxTable.StreamArn}")
		grant([]string{"secretsmanager:GetSecretValue"},
			"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"+SecretsPrefix(cfg.Stage)+"*")
		// The Slack messages posted for an approval, recorded with it and
		// read back at its outcome: no query, no update, no index.
		grant([]string{"dynamodb:GetItem", "dynamodb:PutItem"}, "${IdentityTable.Arn}")
	case "ingest":
		// The session a call's source identity names, read; the call
		// appended to the trail, a retried append reading its record
		// back. No query, no update, no index, no other table.
		grant([]string{"dynamodb:GetItem"}, "${IdentityTable.Arn}")
		grant([]string{"dynamodb:GetItem", "dynamodb:PutItem"}, "${AuditTable.Arn}")
	case "slack", "approvals":
		// Approvals: read, decided (slack) or expired (approvals) with
		// conditional writes and transactions, replays caught by a
		// conditional put, task tokens stored with them (approvals).
		grant([]string{"dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"},
			"${IdentityTable.Arn}", "${IdentityTable.Arn}/index/*")
		// Decisions and expiries appended to the trail; a retried append
		// reads its record back. No index.
		grant([]string{"dynamodb:GetItem", "dynamodb:PutItem"}, "${AuditTable.Arn}")
		if fn == "slack" {
			// The Slack app's two secrets, whatever cfg.Slack: their ARNs
			// end in "-" and six random characters.
			grant([]string{"secretsmanager:GetSecretValue"}, slackSecretARNs(cfg.Stage)...)
		}
	}
	// The approvals state machine: api and llm start an approval's
	// execution; api (the command line's decisions), slack (Slack's) and
	// approvals (a decision that came before the token) answer its task.
	// The approvals function names the state machine by the ARN its name
	// makes (a reference would be circular).
	answers := []string{"states:SendTaskFailure", "states:SendTaskSuccess"}
	switch fn {
	case "api":
		grant([]string{"states:StartExecution"}, "${ApprovalsStateMachine}")
		grant(answers, "${ApprovalsStateMachine}")
	case "llm":
		grant([]string{"states:StartExecution"}, "${ApprovalsStateMachine}")
	case "slack":
		grant(answers, "${ApprovalsStateMachine}")
	case "approvals":
		grant(answers, approvalsStateMachineARN(cfg.Stage))
	}
	// The agent runtime role, named by the ARN its name makes: the broker
	// (api) assumes it with a source identity and session tags; the api
	// (an administrator's kill) and llm (the watchdog's) functions write
	// its revocation policy.
	switch fn {
	case "api":
		grant([]string{"sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"}, runtimeRoleARN(cfg.Stage))
		fallthrough
	case "llm":
		grant([]string{"iam:DeleteRolePolicy", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:PutRolePolicy"}, runtimeRoleARN(cfg.Stage))
	}
	return out
}

// approvalsStateMachineARN is the approvals state machine's ARN, rendered,
// as its name makes it.
func approvalsStateMachineARN(stage string) string {
	return "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:" + ApprovalsStateMachineName(stage)
}

// slackSecretARNs are the ARN patterns of the Slack app's secrets, as the
// slack function's role names them.
func slackSecretARNs(stage string) []string {
	var out []string
	for _, name := range []string{SlackBotTokenSecret, SlackSigningSecretName} {
		out = append(out, "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"+SecretsPrefix(stage)+name+"-??????")
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// TestOutboxPermissions: the api and llm functions only add to the
// outbox; the notifier only reads its stream, touches no bucket, and no
// table item but approvals (GetItem and PutItem on the identity table).
func TestOutboxPermissions(t *testing.T) {
	byRole := defaultStack(t).identityStatements()
	streamReads := []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
	approvalItems := []string{"dynamodb:GetItem ${IdentityTable.Arn}", "dynamodb:PutItem ${IdentityTable.Arn}"}
	want := map[string][]string{
		"api":       {"dynamodb:PutItem ${OutboxTable.Arn}"},
		"llm":       {"dynamodb:PutItem ${OutboxTable.Arn}"},
		"archiver":  nil,
		"notifier":  nil,
		"slack":     nil,
		"approvals": nil,
		"ingest":    nil,
	}
	for _, a := range streamReads {
		want["notifier"] = append(want["notifier"], a+" ${OutboxTable.StreamArn}")
	}
	for _, fn := range Functions {
		var got []string
		for _, g := range grants(byRole[roleRef(fn)]) {
			action, resource, _ := strings.Cut(g, " ")
			if strings.HasPrefix(resource, "${OutboxTable.") {
				got = append(got, g)
			}
			if fn != "notifier" {
				continue
			}
			if strings.HasPrefix(action, "s3:") {
				t.Errorf("notifier: %s: it uses no bucket", g)
			}
			if strings.HasPrefix(action, "dynamodb:") && action != "dynamodb:ListStreams" && !slices.Contains(streamReads, action) &&
				!slices.Contains(approvalItems, g) {
				t.Errorf("notifier: %s: it reads the notifications from the stream's images, no table item but approvals", g)
			}
		}
		if !slices.Equal(got, want[fn]) {
			t.Errorf("%s on the outbox: %q, want %q", fn, got, want[fn])
		}
	}
}

// TestSlackPermissions: the slack function reads the Slack app's two
// secrets and no other (the patterns match the secrets the stack creates
// with slack: true, and are granted without them too: the function then
// refuses every request); it touches the identity table, appends to the
// audit table and answers the approvals state machine's task, and nothing
// else: no budget, no outbox, no bucket.
func TestSlackPermissions(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   func(*testing.T) *stackTemplate
	}{{"default", defaultStack}, {"slack", fullStack}} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st(t)
			got := grants(st.identityStatements()[roleRef("slack")])
			var secrets []string
			for _, g := range got {
				action, resource, _ := strings.Cut(g, " ")
				switch {
				case strings.HasPrefix(action, "secretsmanager:"):
					secrets = append(secrets, g)
				case strings.HasPrefix(action, "logs:"):
				case strings.HasPrefix(action, "dynamodb:") && strings.HasPrefix(resource, "${IdentityTable.Arn}"):
				case slices.Contains([]string{"dynamodb:GetItem", "dynamodb:PutItem"}, action) && resource == "${AuditTable.Arn}":
				case slices.Contains([]string{"states:SendTaskFailure", "states:SendTaskSuccess"}, action) && resource == "${ApprovalsStateMachine}":
				default:
					t.Errorf("slack: %s: it decides approvals in the identity table, appends to the audit table and answers the approvals task, nothing else", g)
				}
			}
			var want []string
			for _, name := range []string{SlackBotTokenSecret, SlackSigningSecretName} {
				full := SecretsPrefix(st.cfg.Stage) + name
				want = append(want, "secretsmanager:GetSecretValue arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"+full+"-??????")
				var created bool
				for _, s := range st.resources("AWS::SecretsManager::Secret") {
					created = created || s["Properties"].(map[string]any)["Name"] == full
				}
				if created != st.cfg.Slack {
					t.Errorf("secret %s created %v with slack %v", full, created, st.cfg.Slack)
				}
			}
			sort.Strings(want)
			if !slices.Equal(secrets, want) {
				t.Errorf("slack secrets:\n%s\nwant:\n%s", strings.Join(secrets, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestBedrockPermission(t *testing.T) {
	// No models, no Bedrock action at all.
	for role, stmts := range defaultStack(t).identityStatements() {
		for _, g := range grants(stmts) {
			if strings.HasPrefix(g, "bedrock:") {
				t.Errorf("%s: %s with no bedrockModels configured", role, g)
			}
		}
	}
	// Configured: only llm, only the two invoke actions (TestLeastPrivilege
	// checks the ARNs).
	var llm int
	for role, stmts := range fullStack(t).identityStatements() {
		for _, g := range grants(stmts) {
			if strings.HasPrefix(g, "bedrock:") {
				if role != "${LlmRole}" {
					t.Errorf("%s: %s", role, g)
				}
				llm++
			}
		}
	}
	if llm != 2*3 {
		t.Errorf("llm has %d Bedrock grants, want 6 (2 actions × a model, a profile and its model)", llm)
	}
}

func TestAPIStage(t *testing.T) {
	st := defaultStack(t)
	must(t, "stage", func() {
		st.template.ResourceCountIs(jsii.String("AWS::ApiGateway::Stage"), jsii.Number(1))
		st.template.HasResourceProperties(jsii.String("AWS::ApiGateway::Stage"), match(&map[string]any{
			"StageName": "dev",
			"MethodSettings": []any{match(&map[string]any{
				"HttpMethod": "*", "ResourcePath": "/*",
				"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100,
				"DataTraceEnabled": false, "LoggingLevel": absent(),
			})},
			"AccessLogSetting": match(&map[string]any{
				"DestinationArn": map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("^ApiAccessLogs")), "Arn"}},
				"Format":         assertions.Match_StringLikeRegexp(jsii.String(`"status":"\$context.status"`)),
			}),
		}))
	})
	must(t, "regional endpoint", func() {
		st.template.HasResourceProperties(jsii.String("AWS::ApiGateway::RestApi"), match(&map[string]any{
			"EndpointConfiguration": map[string]any{"Types": []any{"REGIONAL"}},
		}))
	})
	// Each function may be invoked by API Gateway only on its own methods
	// (but ingest, by its EventBridge rule only: TestIngestFunctionInvokers).
	for id, p := range st.resources("AWS::Lambda::Permission") {
		props := p["Properties"].(map[string]any)
		src := render(props["SourceArn"])
		if render(props["FunctionName"]) == "${IngestFunction.Arn}" {
			continue
		}
		if props["Principal"] != "apigateway.amazonaws.com" || !strings.Contains(src, ":execute-api:") || strings.Contains(src, "/test-invoke-stage/") {
			t.Errorf("permission %s: principal %v, source %s", id, props["Principal"], src)
		}
	}
}

func TestAlarms(t *testing.T) {
	st := defaultStack(t)
	topic := map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^AlarmTopic"))}
	for _, fn := range Functions {
		for _, metric := range []string{"Errors", "Throttles"} {
			must(t, fn+" "+metric, func() {
				st.template.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), match(&map[string]any{
					"Namespace":          "AWS/Lambda",
					"MetricName":         metric,
					"Dimensions":         []any{map[string]any{"Name": "FunctionName", "Value": map[string]any{"Ref": st.functionID(t, fn)}}},
					"Threshold":          1,
					"ComparisonOperator": "GreaterThanOrEqualToThreshold",
					"AlarmActions":       []any{topic},
				}))
			})
		}
	}
	// The alarms on a sum over five minutes, each of one dimension: the
	// functions' custom metrics (one count per budget alert from api and
	// llm, per notification given up on by the notifier); a failed
	// execution of the approvals state machine (an approval its function
	// failed to expire, whose task failed, or whose messages the notifier
	// failed to update); EventBridge giving up on delivering a call to the
	// ingest function (the function's own failures are its Errors alarm).
	for _, a := range []struct {
		alarm, namespace, metric, dimension string
		value                               any
	}{
		{awsconfig.MetricBudgetAlerts, awsconfig.MetricsNamespace, awsconfig.MetricBudgetAlerts, awsconfig.MetricsDimension, "dev"},
		{awsconfig.MetricNotificationsFailed, awsconfig.MetricsNamespace, awsconfig.MetricNotificationsFailed, awsconfig.MetricsDimension, "dev"},
		{"ApprovalsExecutionsFailed", "AWS/States", "ExecutionsFailed", "StateMachineArn",
			map[string]any{"Ref": st.logicalID(t, "AWS::StepFunctions::StateMachine", "ApprovalsStateMachine")}},
		{"IngestRuleFailedInvocations", "AWS/Events", "FailedInvocations", "RuleName",
			map[string]any{"Ref": st.logicalID(t, "AWS::Events::Rule", "IngestRule")}},
	} {
		must(t, a.alarm, func() {
			st.only(t, st.logicalID(t, "AWS::CloudWatch::Alarm", a.alarm)).HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), match(&map[string]any{
				"Namespace":          a.namespace,
				"MetricName":         a.metric,
				"Dimensions":         []any{map[string]any{"Name": a.dimension, "Value": a.value}},
				"Statistic":          "Sum",
				"Period":             300,
				"EvaluationPeriods":  1,
				"Threshold":          1,
				"ComparisonOperator": "GreaterThanOrEqualToThreshold",
				"AlarmActions":       []any{topic},
			}))
		})
	}
	must(t, "every alarm notifies", func() {
		st.template.ResourcePropertiesCountIs(jsii.String("AWS::CloudWatch::Alarm"), match(&map[string]any{"AlarmActions": []any{topic}}),
			jsii.Number(float64(len(st.resources("AWS::CloudWatch::Alarm")))))
		st.template.ResourceCountIs(jsii.String("AWS::SNS::Subscription"), jsii.Number(0))
	})
	must(t, "email subscription", func() {
		fullStack(t).template.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), match(&map[string]any{
			"Protocol": "email", "Endpoint": "oncall@example.com",
		}))
	})
}

func TestOutputs(t *testing.T) {
	st := defaultStack(t)
	var names []string
	for name := range st.json["Outputs"].(map[string]any) {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{"AlarmTopicArn", "ApiEndpoint", "ApprovalsStateMachineArn", "ArchiveBucketName", "AuditTableName", "BudgetTableName",
		"IdentityTableName", "LlmUrl", "PolicyBucketName", "RuntimeRoleArn", "SecretsPrefix", "SlackInteractivityUrl"}
	if !slices.Equal(names, want) {
		t.Errorf("outputs %q, want %q", names, want)
	}
	must(t, "values", func() {
		st.template.HasOutput(jsii.String("SecretsPrefix"), match(&map[string]any{"Value": "warden/dev/"}))
	})
	if ref, want := st.outputRef(t, "ApprovalsStateMachineArn"), st.logicalID(t, "AWS::StepFunctions::StateMachine", "ApprovalsStateMachine"); ref != want {
		t.Errorf("output ApprovalsStateMachineArn names %s, want %s", ref, want)
	}
	out := st.json["Outputs"].(map[string]any)
	api := render(out["ApiEndpoint"].(map[string]any)["Value"])
	llm := render(out["LlmUrl"].(map[string]any)["Value"])
	if want := "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${ApiDeploymentStagedev}"; llm != want || api != want+"/" {
		t.Errorf("ApiEndpoint %s, LlmUrl %s; want LlmUrl %s (no trailing slash: clients append /v1/messages)", api, llm, want)
	}
	// Slack's Request URL: the API's URL and the interactivity route.
	if slack, want := render(out["SlackInteractivityUrl"].(map[string]any)["Value"]), api+"v1/slack/interactivity"; slack != want {
		t.Errorf("SlackInteractivityUrl %s, want %s", slack, want)
	}
	if st.json["Description"] == nil {
		t.Error("stack has no description")
	}
}

func TestStackName(t *testing.T) {
	if got := defaultStack(t).stackName; got != "Warden-dev" {
		t.Errorf("default stack %s, want Warden-dev", got)
	}
	if got := fullStack(t).stackName; got != "Warden-prod" {
		t.Errorf("stack %s, want Warden-prod", got)
	}
}
