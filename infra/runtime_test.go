package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/wardenhq/warden/shared/awsconfig"
)

// runtimeRoleARN is the agent runtime role's ARN, rendered, as its name
// makes it.
func runtimeRoleARN(stage string) string {
	return "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/" + RuntimeRoleName(stage)
}

// runtimeRoleARNValue is the same ARN as the template writes it.
func runtimeRoleARNValue(stage string) map[string]any {
	return map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::",
		map[string]any{"Ref": "AWS::AccountId"}, ":role/" + RuntimeRoleName(stage)}}}
}

// TestRuntimeRole: the agent runtime role, named by the stage; trusted by
// the api function's role alone (the broker: no account root, no other
// principal) for exactly AssumeRole and SetSourceIdentity with a source
// identity, and TagSession with the broker's two tags; sessions of up to
// 12 hours; the agent boundary as its permissions boundary; the managed
// policies of agentPolicyArns and no other policy.
func TestRuntimeRole(t *testing.T) {
	// The session tags the broker sets (shared/broker), read from its
	// source: the trust policy allows these and no other.
	broker := packageConsts(t, filepath.Join("..", "shared", "broker"))
	if got := []string{broker["TagProject"], broker["TagAgent"]}; !slices.Equal(got, RuntimeSessionTags) {
		t.Errorf("shared/broker tags sessions with %q; the trust policy allows %q", got, RuntimeSessionTags)
	}
	for _, tc := range []struct {
		name    string
		st      func(*testing.T) *stackTemplate
		managed []any
	}{
		{"default", defaultStack, nil},
		{"configured", fullStack, []any{"arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/warden/AgentData"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st(t)
			id := st.logicalID(t, "AWS::IAM::Role", "AgentRuntimeRole")
			principal := map[string]any{"AWS": map[string]any{"Fn::GetAtt": []any{st.logicalID(t, "AWS::IAM::Role", "ApiRole"), "Arn"}}}
			sourceIdentity := map[string]any{"StringLike": map[string]any{"sts:SourceIdentity": "*"}}
			managed := absent()
			if tc.managed != nil {
				managed = assertions.Match_Exact(tc.managed)
			}
			must(t, "runtime role", func() {
				st.only(t, id).HasResourceProperties(jsii.String("AWS::IAM::Role"), match(&map[string]any{
					"RoleName": "Warden-" + st.cfg.Stage + "-AgentRuntime",
					"AssumeRolePolicyDocument": exactly(&map[string]any{
						"Version": "2012-10-17",
						"Statement": []any{
							exactly(&map[string]any{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", "Condition": sourceIdentity}),
							exactly(&map[string]any{"Effect": "Allow", "Principal": principal, "Action": "sts:SetSourceIdentity", "Condition": sourceIdentity}),
							exactly(&map[string]any{"Effect": "Allow", "Principal": principal, "Action": "sts:TagSession", "Condition": map[string]any{
								"ForAllValues:StringEquals": map[string]any{"aws:TagKeys": []any{"warden:project", "warden:agent"}},
							}}),
						},
					}),
					"MaxSessionDuration":  43200,
					"PermissionsBoundary": exactly(&map[string]any{"Ref": st.logicalID(t, "AWS::IAM::ManagedPolicy", "AgentBoundary")}),
					"ManagedPolicyArns":   managed,
					"Policies":            absent(),
					"Path":                absent(),
				}))
			})
		})
	}
}

// TestRuntimeRoleARN: the api and llm functions name the runtime role by
// the ARN its name makes (they cannot refer to it: its boundary names
// them), in their environment, their grants (TestLeastPrivilege) and the
// ingest rule's pattern; that ARN is the role's, in IAM's format. The
// RuntimeRoleArn output is the role's own.
func TestRuntimeRoleARN(t *testing.T) {
	eachStack(t, func(t *testing.T, st *stackTemplate) {
		id := st.logicalID(t, "AWS::IAM::Role", "AgentRuntimeRole")
		props := st.resource(t, id)["Properties"].(map[string]any)
		want := runtimeRoleARN(st.cfg.Stage)
		// No path: the role's ARN is arn:…:role/<name>.
		if props["Path"] != nil || !strings.HasSuffix(want, ":role/"+props["RoleName"].(string)) {
			t.Errorf("role named %v (path %v), its ARN taken as %s", props["RoleName"], props["Path"], want)
		}
		for _, fn := range []string{"api", "llm"} {
			vars := st.resource(t, st.functionID(t, fn))["Properties"].(map[string]any)["Environment"].(map[string]any)["Variables"].(map[string]any)
			env := vars[awsconfig.EnvRuntimeRole]
			if got := render(env); got != want {
				t.Errorf("%s function's %s: %s, want %s", fn, awsconfig.EnvRuntimeRole, got, want)
			}
			deployed, err := resolve(env)
			if err != nil {
				t.Fatal(err)
			}
			// arn:partition:iam::account:role/name, the name 1 to 64 of
			// IAM's characters.
			if !regexp.MustCompile(`^arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_-]{1,64}$`).MatchString(deployed) {
				t.Errorf("%s is not a role's ARN", deployed)
			}
		}
		pattern := st.ingestPattern(t)
		issuer := pattern["detail"].(map[string]any)["userIdentity"].(map[string]any)["sessionContext"].(map[string]any)["sessionIssuer"].(map[string]any)["arn"]
		if got := stringList(issuer); !slices.Equal(got, []string{want}) {
			t.Errorf("the ingest rule takes the calls of sessions issued by %q, want %q", got, want)
		}
		out := st.json["Outputs"].(map[string]any)["RuntimeRoleArn"].(map[string]any)["Value"]
		if got := render(out); got != "${AgentRuntimeRole.Arn}" {
			t.Errorf("output RuntimeRoleArn %s, want the role's ARN", got)
		}
	})
}

// ingestPattern returns the ingest rule's event pattern as the template
// writes it.
func (st *stackTemplate) ingestPattern(t *testing.T) map[string]any {
	t.Helper()
	id := st.logicalID(t, "AWS::Events::Rule", "IngestRule")
	p, ok := st.resource(t, id)["Properties"].(map[string]any)["EventPattern"].(map[string]any)
	if !ok {
		t.Fatalf("rule %s has no event pattern", id)
	}
	return p
}

// wardenARNs classifies every resource of a template for the agent
// boundary: the ARNs, rendered, its NotWarden statement must deny for
// Warden's own resources (a resource's own, "<ARN>*" for it and
// everything under it, or a pattern that covers it), and the resources of
// a type it does not know: a new kind of resource must be classified
// before the test passes.
func wardenARNs(resources map[string]any, stage string) (arns []string, unknown []string) {
	partition, regional := "arn:${AWS::Partition}:", ":${AWS::Region}:${AWS::AccountId}:"
	add := func(a ...string) {
		for _, arn := range a {
			if !slices.Contains(arns, arn) {
				arns = append(arns, arn)
			}
		}
	}
	for id, r := range resources {
		r := r.(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		f := friendly(id)
		switch typ, _ := r["Type"].(string); typ {
		case "AWS::DynamoDB::Table": // its indexes and stream under it
			add("${" + f + ".Arn}*")
		case "AWS::S3::Bucket": // and its objects
			add("${" + f + ".Arn}*")
		case "AWS::Lambda::Function": // and its versions and aliases
			add("${" + f + ".Arn}*")
		case "AWS::Lambda::EventSourceMapping":
			add(partition + "lambda" + regional + "event-source-mapping:${" + f + "}")
		case "AWS::Logs::LogGroup":
			add("${" + f + ".Arn}")
		case "AWS::StepFunctions::StateMachine": // and its executions
			name, _ := props["StateMachineName"].(string)
			add("${"+f+"}", partition+"states"+regional+"execution:"+name+":*")
		case "AWS::Events::Rule":
			add("${" + f + ".Arn}")
		case "AWS::SNS::Topic": // and its subscriptions
			add("${" + f + "}*")
		case "AWS::ApiGateway::RestApi": // its configuration, and invoking it
			add(partition+"apigateway:${AWS::Region}::/restapis/${"+f+"}*", partition+"execute-api"+regional+"${"+f+"}/*")
		case "AWS::SecretsManager::Secret": // by the stage's prefix
			if name, _ := props["Name"].(string); !strings.HasPrefix(name, SecretsPrefix(stage)) {
				unknown = append(unknown, id+" (a secret outside "+SecretsPrefix(stage)+")")
			}
			add(partition + "secretsmanager" + regional + "secret:" + SecretsPrefix(stage) + "*")
		case "AWS::CloudWatch::Alarm": // by the stack's name
			if name, _ := props["AlarmName"].(string); !strings.HasPrefix(name, StackName(stage)+"-") {
				unknown = append(unknown, id+" (an alarm not named "+StackName(stage)+"-…)")
			}
			add(partition + "cloudwatch" + regional + "alarm:" + StackName(stage) + "-*")
		// Under their parent's ARN: the API's resources, methods,
		// deployment and stage (/restapis/ID/…), a bucket's policy
		// (s3:PutBucketPolicy is an action on the bucket), a function's
		// permissions (lambda:AddPermission, on the function), a topic's
		// subscriptions (<topic ARN>:ID).
		case "AWS::ApiGateway::Resource", "AWS::ApiGateway::Method", "AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage",
			"AWS::S3::BucketPolicy", "AWS::Lambda::Permission", "AWS::SNS::Subscription":
		// IAM's, denied whole (iam:*), as is setting API Gateway's
		// account-wide logging role (it needs iam:PassRole).
		case "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::ApiGateway::Account":
		default:
			unknown = append(unknown, id+" ("+typ+")")
		}
	}
	sort.Strings(arns)
	sort.Strings(unknown)
	return arns, unknown
}

// TestAgentBoundary: the runtime role's permissions boundary, attached to
// no principal and the boundary of the runtime role alone: it allows at
// most the role's own policies; it denies IAM, Organizations, the
// account's settings and assuming another role or the root; it denies
// stopping or narrowing a trail; and it denies every action on each of
// Warden's resources (every resource of the template, classified by
// wardenARNs).
func TestAgentBoundary(t *testing.T) {
	eachStack(t, func(t *testing.T, st *stackTemplate) {
		if n := len(st.resources("AWS::IAM::ManagedPolicy")); n != 1 {
			t.Errorf("%d managed policies, want 1 (the agent boundary)", n)
		}
		id := st.logicalID(t, "AWS::IAM::ManagedPolicy", "AgentBoundary")
		runtime := st.logicalID(t, "AWS::IAM::Role", "AgentRuntimeRole")
		must(t, "boundary", func() {
			st.only(t, id).HasResourceProperties(jsii.String("AWS::IAM::ManagedPolicy"), match(&map[string]any{
				"ManagedPolicyName": "Warden-" + st.cfg.Stage + "-AgentBoundary",
				"Path":              "/",
				"Roles":             absent(),
				"Users":             absent(),
				"Groups":            absent(),
			}))
		})
		for rid, r := range st.resources("AWS::IAM::Role") {
			pb := r["Properties"].(map[string]any)["PermissionsBoundary"]
			if (rid == runtime) != (render(pb) == "${AgentBoundary}") || (rid != runtime && pb != nil) {
				t.Errorf("role %s: permissions boundary %v", rid, pb)
			}
		}
		doc := st.resource(t, id)["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)
		stmts, _ := doc["Statement"].([]any)
		if len(stmts) != 4 {
			t.Fatalf("%d statements, want 4: %v", len(stmts), stmts)
		}
		must(t, "statements", func() {
			st.only(t, id).HasResourceProperties(jsii.String("AWS::IAM::ManagedPolicy"), match(&map[string]any{
				"PolicyDocument": match(&map[string]any{
					"Version": "2012-10-17",
					"Statement": []any{
						exactly(&map[string]any{"Sid": "AtMostTheRolesPolicies", "Effect": "Allow", "Action": "*", "Resource": "*"}),
						exactly(&map[string]any{"Sid": "NoIdentityChanges", "Effect": "Deny", "Resource": "*",
							"Action": []any{"iam:*", "organizations:*", "account:*", "sts:AssumeRole*", "sts:AssumeRoot"}}),
						exactly(&map[string]any{"Sid": "NoTrailChanges", "Effect": "Deny", "Resource": "*",
							"Action": []any{"cloudtrail:DeleteTrail", "cloudtrail:PutEventSelectors", "cloudtrail:StopLogging", "cloudtrail:UpdateTrail"}}),
						exactly(&map[string]any{"Sid": "NotWarden", "Effect": "Deny", "Action": "*", "Resource": assertions.Match_AnyValue()}),
					},
				}),
			}))
		})
		got := stringList(stmts[3].(map[string]any)["Resource"])
		sort.Strings(got)
		want, unknown := wardenARNs(st.json["Resources"].(map[string]any), st.cfg.Stage)
		for _, u := range unknown {
			t.Errorf("resource %s: does the agent boundary deny it to agents? Classify it in wardenARNs", u)
		}
		if !slices.Equal(got, want) {
			t.Errorf("the boundary denies agents:\n%s\nwant every Warden resource:\n%s\nextra: %q\nmissing: %q",
				strings.Join(got, "\n"), strings.Join(want, "\n"), minus(got, want), minus(want, got))
		}
	})
	// The classification refuses a resource it does not know, a secret
	// outside the stage's prefix and an alarm outside the stack's name:
	// each would be left to the agents.
	resources := map[string]any{}
	for id, r := range defaultStack(t).json["Resources"].(map[string]any) {
		resources[id] = r
	}
	resources["Queue4A7E3555"] = map[string]any{"Type": "AWS::SQS::Queue", "Properties": map[string]any{}}
	resources["OtherSecret0A1B2C3D"] = map[string]any{"Type": "AWS::SecretsManager::Secret", "Properties": map[string]any{"Name": "shared/key"}}
	resources["OtherAlarm0A1B2C3D"] = map[string]any{"Type": "AWS::CloudWatch::Alarm", "Properties": map[string]any{"AlarmName": "Errors"}}
	_, unknown := wardenARNs(resources, "dev")
	if want := []string{"OtherAlarm0A1B2C3D (an alarm not named Warden-dev-…)", "OtherSecret0A1B2C3D (a secret outside warden/dev/)",
		"Queue4A7E3555 (AWS::SQS::Queue)"}; !slices.Equal(unknown, want) {
		t.Errorf("unclassified %q, want %q", unknown, want)
	}
}

// MaxManagedPolicyChars is IAM's limit on a managed policy's document,
// whitespace not counted.
const MaxManagedPolicyChars = 6144

// worstCaseARN is the longest string a reference to a resource of type
// typ can become once deployed, in the aws-us-gov partition, a region
// name of 14 characters: the ARN (or the ID, for a Ref that is one)
// with a name of the longest AWS accepts or CloudFormation generates
// (stack name, logical ID and a random suffix: under 80 characters for a
// 20-character stage). Zero for a type it does not know.
func worstCaseARN(typ, attribute string) int {
	const arn = len("arn:aws-us-gov:") + len(":ap-southeast-7:123456789012:") // arn:partition:service:region:account:
	const generated = 80
	switch {
	case typ == "AWS::ApiGateway::RestApi" && attribute == "":
		return 10 // the API's ID
	case typ == "AWS::Lambda::EventSourceMapping" && attribute == "":
		return 36 // a UUID
	case typ == "AWS::S3::Bucket" && attribute == "Arn":
		return len("arn:aws-us-gov:s3:::") + 63
	case typ == "AWS::DynamoDB::Table" && attribute == "Arn":
		return arn + len("dynamodb") + len("table/") + generated
	case typ == "AWS::Lambda::Function" && attribute == "Arn":
		return arn + len("lambda") + len("function:") + 64
	case typ == "AWS::Logs::LogGroup" && attribute == "Arn":
		return arn + len("logs") + len("log-group:") + generated + len(":*")
	case typ == "AWS::StepFunctions::StateMachine" && attribute == "":
		return arn + len("states") + len("stateMachine:") + generated
	case typ == "AWS::Events::Rule" && attribute == "Arn":
		return arn + len("events") + len("rule/") + 64
	case typ == "AWS::SNS::Topic" && attribute == "":
		return arn + len("sns") + generated
	}
	return 0
}

// deployedWorstCase writes a CloudFormation value as the longest string
// it can become once deployed (worstCaseARN for references), so that its
// length is an upper bound.
func deployedWorstCase(t *testing.T, resources map[string]any, v any) any {
	t.Helper()
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deployedWorstCase(t, resources, e)
		}
		return out
	case map[string]any:
		ref, isRef := v["Ref"].(string)
		ga, isGetAtt := v["Fn::GetAtt"].([]any)
		j, isJoin := v["Fn::Join"].([]any)
		switch {
		case isRef && len(v) == 1:
			switch ref {
			case "AWS::Partition":
				return "aws-us-gov"
			case "AWS::Region":
				return "ap-southeast-7"
			case "AWS::AccountId":
				return "123456789012"
			}
			return deployedRef(t, resources, ref, "")
		case isGetAtt && len(v) == 1 && len(ga) == 2:
			return deployedRef(t, resources, ga[0].(string), ga[1].(string))
		case isJoin && len(v) == 1 && len(j) == 2:
			var b strings.Builder
			for i, p := range j[1].([]any) {
				if i > 0 {
					b.WriteString(j[0].(string))
				}
				s, ok := deployedWorstCase(t, resources, p).(string)
				if !ok {
					t.Fatalf("Fn::Join of a non-string: %v", p)
				}
				b.WriteString(s)
			}
			return b.String()
		}
		out := map[string]any{}
		for k, e := range v {
			out[k] = deployedWorstCase(t, resources, e)
		}
		return out
	}
	return v
}

func deployedRef(t *testing.T, resources map[string]any, id, attribute string) string {
	t.Helper()
	typ, _ := resources[id].(map[string]any)["Type"].(string)
	n := worstCaseARN(typ, attribute)
	if n == 0 {
		t.Fatalf("how long can %s.%s (%s) be once deployed? Teach worstCaseARN", id, attribute, typ)
	}
	return strings.Repeat("x", n)
}

// TestAgentBoundarySize: the boundary stays under IAM's limit on a
// managed policy, for the longest stage name, partition and region, and
// every resource name as long as it can be: a boundary over the limit
// fails the deploy.
func TestAgentBoundarySize(t *testing.T) {
	st := synth(t, "long stage", map[string]any{"stage": "abcdefghij-klmnopqrs"})
	if len(st.cfg.Stage) != 20 {
		t.Fatalf("stage %q: want the longest, 20 characters", st.cfg.Stage)
	}
	resources := st.json["Resources"].(map[string]any)
	id := st.logicalID(t, "AWS::IAM::ManagedPolicy", "AgentBoundary")
	doc := deployedWorstCase(t, resources, resources[id].(map[string]any)["Properties"].(map[string]any)["PolicyDocument"])
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	n := len(bytes.TrimSpace(b.Bytes()))
	t.Logf("agent boundary: at most %d of %d characters", n, MaxManagedPolicyChars)
	if n > MaxManagedPolicyChars {
		t.Errorf("the agent boundary may reach %d characters, over IAM's %d for a managed policy", n, MaxManagedPolicyChars)
	}
}

// TestIngestRule: the rule on the default event bus that takes the
// calls made with the runtime role's credentials, as CloudTrail delivers
// them (read-only management events included), from AWS services only,
// to the ingest function; delivery retried twice, within an hour; no
// dead-letter queue, no transformation of the event.
func TestIngestRule(t *testing.T) {
	eachStack(t, func(t *testing.T, st *stackTemplate) {
		if n := len(st.resources("AWS::Events::Rule")); n != 1 {
			t.Fatalf("%d rules, want 1", n)
		}
		id := st.logicalID(t, "AWS::Events::Rule", "IngestRule")
		must(t, "rule", func() {
			st.only(t, id).HasResourceProperties(jsii.String("AWS::Events::Rule"), match(&map[string]any{
				"EventBusName":       absent(), // the default bus, where AWS services' events arrive
				"State":              "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
				"ScheduleExpression": absent(),
				"RoleArn":            absent(),
				"EventPattern": exactly(&map[string]any{
					"source":      []any{exactly(&map[string]any{"prefix": "aws."})},
					"detail-type": []any{awsconfig.CloudTrailDetailType},
					"detail": exactly(&map[string]any{"userIdentity": exactly(&map[string]any{"sessionContext": exactly(&map[string]any{
						"sessionIssuer": exactly(&map[string]any{"arn": []any{runtimeRoleARNValue(st.cfg.Stage)}}),
					})})}),
				}),
				"Targets": []any{exactly(&map[string]any{
					"Arn":         map[string]any{"Fn::GetAtt": []any{st.functionID(t, "ingest"), "Arn"}},
					"Id":          assertions.Match_AnyValue(),
					"RetryPolicy": exactly(&map[string]any{"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 2}),
				})},
			}))
		})
	})
}

// matchesPattern reports whether an event matches an EventBridge event
// pattern of the forms the ingest rule uses: under each key, an object
// descends into the event's, a list holds the values accepted (a string,
// equal; {"prefix": p}). Anything else fails the test.
func matchesPattern(t *testing.T, pattern, event map[string]any) bool {
	t.Helper()
	for key, p := range pattern {
		switch p := p.(type) {
		case map[string]any:
			sub, ok := event[key].(map[string]any)
			if !ok || !matchesPattern(t, p, sub) {
				return false
			}
		case []any:
			value, ok := event[key].(string)
			if !ok {
				return false
			}
			if !slices.ContainsFunc(p, func(accepted any) bool {
				switch a := accepted.(type) {
				case string:
					return value == a
				case map[string]any:
					prefix, ok := a["prefix"].(string)
					if !ok || len(a) != 1 {
						t.Fatalf("pattern %s: %v: teach matchesPattern", key, a)
					}
					return strings.HasPrefix(value, prefix)
				}
				t.Fatalf("pattern %s: %v: teach matchesPattern", key, accepted)
				return false
			}) {
				return false
			}
		default:
			t.Fatalf("pattern %s: %v: teach matchesPattern", key, p)
		}
	}
	return true
}

// deployedPattern is the ingest rule's pattern as deployed (resolve's
// placeholders: the samples' account and region).
func (st *stackTemplate) deployedPattern(t *testing.T) map[string]any {
	t.Helper()
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case []any:
			out := make([]any, len(v))
			for i, e := range v {
				out[i] = walk(e)
			}
			return out
		case map[string]any:
			if _, join := v["Fn::Join"]; join {
				s, err := resolve(v)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			out := map[string]any{}
			for k, e := range v {
				out[k] = walk(e)
			}
			return out
		}
		return v
	}
	return walk(st.ingestPattern(t)).(map[string]any)
}

// TestIngestRuleMatchesSamples: the ingest function's sample events
// (events/ingest: calls the dev stage's runtime role made, as EventBridge
// delivers them) match the dev stack's rule, and would reach the
// function; the same events do not match if another role's session made
// the call, if they are not CloudTrail's, or if they were put on the bus
// by someone (a custom source: only AWS may use aws.*), nor does another
// stage's rule take them.
func TestIngestRuleMatchesSamples(t *testing.T) {
	samples, err := filepath.Glob(filepath.Join("..", "events", "ingest", "*.json"))
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples in events/ingest: %v", err)
	}
	dev, prod := defaultStack(t).deployedPattern(t), fullStack(t).deployedPattern(t)
	for _, sample := range samples {
		t.Run(filepath.Base(sample), func(t *testing.T) {
			read := func() map[string]any {
				data, err := os.ReadFile(sample)
				if err != nil {
					t.Fatal(err)
				}
				var ev map[string]any
				if err := json.Unmarshal(data, &ev); err != nil {
					t.Fatal(err)
				}
				return ev
			}
			if !matchesPattern(t, dev, read()) {
				t.Errorf("the dev stack's rule does not take %s", sample)
			}
			if matchesPattern(t, prod, read()) {
				t.Errorf("the prod stack's rule takes %s, a call of the dev stage's role", sample)
			}
			issuer := func(ev map[string]any) map[string]any {
				return ev["detail"].(map[string]any)["userIdentity"].(map[string]any)["sessionContext"].(map[string]any)["sessionIssuer"].(map[string]any)
			}
			for name, mutate := range map[string]func(ev map[string]any){
				"another role": func(ev map[string]any) { issuer(ev)["arn"] = "arn:aws:iam::123456789012:role/Admin" },
				"no issuer":    func(ev map[string]any) { delete(issuer(ev), "arn") },
				"a user": func(ev map[string]any) {
					delete(ev["detail"].(map[string]any)["userIdentity"].(map[string]any), "sessionContext")
				},
				"another type":      func(ev map[string]any) { ev["detail-type"] = "AWS Service Event via CloudTrail" },
				"a forged source":   func(ev map[string]any) { ev["source"] = "warden.agent" },
				"a source like aws": func(ev map[string]any) { ev["source"] = "awsx.s3" },
			} {
				ev := read()
				mutate(ev)
				if matchesPattern(t, dev, ev) {
					t.Errorf("%s: the rule takes the event", name)
				}
			}
		})
	}
}

// TestIngestFunctionInvokers: the ingest rule is the only thing that
// invokes the ingest function (a resource-based permission for
// EventBridge, from that rule only): no API route, no event source, no
// role (TestApprovalsFunctionInvokers lists every role's Lambda grants);
// and EventBridge invokes no other function.
func TestIngestFunctionInvokers(t *testing.T) {
	st := defaultStack(t)
	fn := st.functionID(t, "ingest")
	rule := st.logicalID(t, "AWS::Events::Rule", "IngestRule")
	var perms []string
	for id, p := range st.resources("AWS::Lambda::Permission") {
		props := p["Properties"].(map[string]any)
		invokesIngest := render(props["FunctionName"]) == "${"+friendly(fn)+".Arn}"
		if invokesIngest {
			perms = append(perms, id)
		}
		if (props["Principal"] == "events.amazonaws.com") != invokesIngest {
			t.Errorf("permission %s lets %v invoke %s", id, props["Principal"], render(props["FunctionName"]))
		}
	}
	if len(perms) != 1 {
		t.Fatalf("%d permissions to invoke the ingest function, want 1: %q", len(perms), perms)
	}
	must(t, "permission", func() {
		st.only(t, perms[0]).HasResourceProperties(jsii.String("AWS::Lambda::Permission"), exactly(&map[string]any{
			"Action":       "lambda:InvokeFunction",
			"FunctionName": map[string]any{"Fn::GetAtt": []any{fn, "Arn"}},
			"Principal":    "events.amazonaws.com",
			"SourceArn":    map[string]any{"Fn::GetAtt": []any{rule, "Arn"}},
		}))
	})
	for id, m := range st.resources("AWS::Lambda::EventSourceMapping") {
		if strings.Contains(render(m["Properties"].(map[string]any)["FunctionName"]), friendly(fn)) {
			t.Errorf("event source mapping %s invokes the ingest function", id)
		}
	}
	for id, m := range st.resources("AWS::ApiGateway::Method") {
		if in, ok := m["Properties"].(map[string]any)["Integration"]; ok && strings.Contains(render(in.(map[string]any)["Uri"]), "${"+friendly(fn)+".Arn}") {
			t.Errorf("API method %s invokes the ingest function", id)
		}
	}
}
