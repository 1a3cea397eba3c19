package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/installer"
)

// Placeholders for what CloudFormation resolves at deploy time, of the
// shapes AWS gives them.
const (
	placeholderRegion  = "eu-central-1"
	placeholderAccount = "123456789012"
)

// resolve writes a CloudFormation value as the string it becomes once
// deployed, with placeholders for the pseudo parameters and for a Lambda
// function's ARN (named by its friendly logical ID). Any other reference
// is an error: the caller then learns what to add.
func resolve(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case map[string]any:
		if ref, ok := v["Ref"].(string); ok && len(v) == 1 {
			switch ref {
			case "AWS::Partition":
				return "aws", nil
			case "AWS::Region":
				return placeholderRegion, nil
			case "AWS::AccountId":
				return placeholderAccount, nil
			case "AWS::URLSuffix":
				return "amazonaws.com", nil
			}
			return "", fmt.Errorf("cannot resolve {Ref: %s}", ref)
		}
		if ga, ok := v["Fn::GetAtt"].([]any); ok && len(v) == 1 && len(ga) == 2 {
			id, _ := ga[0].(string)
			if ga[1] == "Arn" && strings.HasSuffix(friendly(id), "Function") {
				return "arn:aws:lambda:" + placeholderRegion + ":" + placeholderAccount + ":function:" + friendly(id), nil
			}
			return "", fmt.Errorf("cannot resolve {Fn::GetAtt: %v}", ga)
		}
		if j, ok := v["Fn::Join"].([]any); ok && len(v) == 1 && len(j) == 2 {
			sep, _ := j[0].(string)
			parts, _ := j[1].([]any)
			out := make([]string, len(parts))
			for i, p := range parts {
				s, err := resolve(p)
				if err != nil {
					return "", err
				}
				out[i] = s
			}
			return strings.Join(out, sep), nil
		}
	}
	return "", fmt.Errorf("cannot resolve %v", v)
}

// The approvals and notifier functions' ARNs as resolve writes them.
const (
	approvalsFunctionARN = "arn:aws:lambda:" + placeholderRegion + ":" + placeholderAccount + ":function:ApprovalsFunction"
	notifierFunctionARN  = "arn:aws:lambda:" + placeholderRegion + ":" + placeholderAccount + ":function:NotifierFunction"
)

// approvalsStateMachine returns the approvals state machine's logical ID
// and its properties.
func (st *stackTemplate) approvalsStateMachine(t *testing.T) (string, map[string]any) {
	t.Helper()
	id := st.logicalID(t, "AWS::StepFunctions::StateMachine", "ApprovalsStateMachine")
	return id, st.resource(t, id)["Properties"].(map[string]any)
}

// definition is the approvals state machine's definition as deployed
// (DefinitionString resolved), as text.
func (st *stackTemplate) definition(t *testing.T) []byte {
	t.Helper()
	_, props := st.approvalsStateMachine(t)
	if props["Definition"] != nil || props["DefinitionS3Location"] != nil {
		t.Fatalf("the state machine's definition is not (only) its DefinitionString")
	}
	def, err := resolve(props["DefinitionString"])
	if err != nil {
		t.Fatalf("DefinitionString: %v", err)
	}
	if !json.Valid([]byte(def)) {
		t.Fatalf("DefinitionString is not JSON once resolved:\n%s", def)
	}
	return []byte(def)
}

// TestApprovalsStateMachine: a Standard workflow (an approval may wait an
// hour or more; Express runs at most five minutes), named by the stage,
// logging errors without execution data (task tokens) to its own log
// group, no tracing, its own role.
func TestApprovalsStateMachine(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   func(*testing.T) *stackTemplate
		days int
	}{{"default", defaultStack, 90}, {"configured", fullStack, 365}} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st(t)
			if n := len(st.resources("AWS::StepFunctions::StateMachine")); n != 1 {
				t.Fatalf("%d state machines, want 1", n)
			}
			id, _ := st.approvalsStateMachine(t)
			logs := st.logicalID(t, "AWS::Logs::LogGroup", "ApprovalsStateMachineLogs")
			role := st.logicalID(t, "AWS::IAM::Role", "ApprovalsStateMachineRole")
			name := "Warden-" + st.cfg.Stage + "-Approvals"
			must(t, "state machine", func() {
				st.only(t, id).HasResourceProperties(jsii.String("AWS::StepFunctions::StateMachine"), match(&map[string]any{
					"StateMachineName": name,
					"StateMachineType": "STANDARD",
					"LoggingConfiguration": exactly(&map[string]any{
						"Destinations": []any{map[string]any{"CloudWatchLogsLogGroup": map[string]any{
							"LogGroupArn": map[string]any{"Fn::GetAtt": []any{logs, "Arn"}},
						}}},
						"Level":                "ERROR",
						"IncludeExecutionData": false,
					}),
					"TracingConfiguration": exactly(&map[string]any{"Enabled": false}),
					"RoleArn":              map[string]any{"Fn::GetAtt": []any{role, "Arn"}},
				}))
			})
			must(t, "log group", func() {
				st.only(t, logs).HasResource(jsii.String("AWS::Logs::LogGroup"), match(&map[string]any{
					"Properties": exactly(&map[string]any{
						"LogGroupName":    "/aws/vendedlogs/states/" + name,
						"RetentionInDays": tc.days,
						"Tags":            assertions.Match_AnyValue(),
					}),
					"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
				}))
			})
			// Assumed by Step Functions for this account's state machines
			// only.
			must(t, "role", func() {
				st.only(t, role).HasResourceProperties(jsii.String("AWS::IAM::Role"), match(&map[string]any{
					"AssumeRolePolicyDocument": match(&map[string]any{"Statement": []any{match(&map[string]any{
						"Action":    "sts:AssumeRole",
						"Effect":    "Allow",
						"Principal": exactly(&map[string]any{"Service": "states.amazonaws.com"}),
						"Condition": match(&map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": map[string]any{"Ref": "AWS::AccountId"}}}),
					})}}),
					"ManagedPolicyArns": absent(),
				}))
			})
		})
	}
}

// TestApprovalsDefinition compares the whole definition as deployed with
// the workflow: wait (a .waitForTaskToken invocation of the approvals
// function) until the execution input's timeout_seconds, retrying the
// Lambda service's transient errors; at States.Timeout, expire, keeping
// the input; after a decision or the expiry, the notifier updates the
// approvers' messages (its result discarded), then Decided. Nothing else:
// no other state, no heartbeat, no CDK default retry.
func TestApprovalsDefinition(t *testing.T) {
	retry := `[{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
		"IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}]`
	want := `{
		"Comment": "Warden approvals: waits for each approval's decision until its timeout, then expires it, and updates the approvers' messages",
		"StartAt": "Wait for a decision",
		"States": {
			"Wait for a decision": {
				"Type": "Task",
				"Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
				"Parameters": {
					"FunctionName": "` + approvalsFunctionARN + `",
					"Payload": {"step": "wait", "approval.$": "$.approval", "task_token.$": "$$.Task.Token"}
				},
				"TimeoutSecondsPath": "$.timeout_seconds",
				"ResultPath": "$.decision",
				"Retry": ` + retry + `,
				"Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "Expire"}],
				"Next": "Update the messages"
			},
			"Expire": {
				"Type": "Task",
				"Resource": "arn:aws:states:::lambda:invoke",
				"Parameters": {
					"FunctionName": "` + approvalsFunctionARN + `",
					"Payload": {"step": "expire", "approval.$": "$.approval"}
				},
				"ResultPath": "$.expired",
				"Retry": ` + retry + `,
				"Next": "Update the messages"
			},
			"Update the messages": {
				"Type": "Task",
				"Resource": "arn:aws:states:::lambda:invoke",
				"Parameters": {
					"FunctionName": "` + notifierFunctionARN + `",
					"Payload": {"step": "outcome", "approval.$": "$.approval"}
				},
				"ResultPath": null,
				"Retry": ` + retry + `,
				"Next": "Decided"
			},
			"Decided": {"Type": "Succeed"}
		}
	}`
	eachStack(t, func(t *testing.T, st *stackTemplate) {
		var got, wantDef map[string]any
		if err := json.Unmarshal(st.definition(t), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(want), &wantDef); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, wantDef) {
			g, _ := json.MarshalIndent(got, "", "  ")
			w, _ := json.MarshalIndent(wantDef, "", "  ")
			t.Errorf("definition:\n%s\nwant:\n%s", g, w)
		}
	})
	// The names the approvals function and the tests rely on.
	if StateWait != "Wait for a decision" || StateExpire != "Expire" || StateOutcome != "Update the messages" ||
		StateDecided != "Decided" {
		t.Errorf("state names %q, %q, %q, %q changed", StateWait, StateExpire, StateOutcome, StateDecided)
	}
}

// TestApprovalsPayloadsMatchSamples: each task's payload, once Step
// Functions fills in its JSONPaths, has the keys and the step of its
// function's sample: in events/approvals for the approvals function's
// tasks (which shared/approvaltask decodes into its input), in
// events/notifier for the notifier's. The definition and the functions
// cannot drift apart.
func TestApprovalsPayloadsMatchSamples(t *testing.T) {
	var def struct {
		States map[string]struct {
			Type       string
			Parameters struct{ Payload map[string]any }
		}
	}
	if err := json.Unmarshal(defaultStack(t).definition(t), &def); err != nil {
		t.Fatal(err)
	}
	samples := map[string]string{
		StateWait:    "approvals/wait.json",
		StateExpire:  "approvals/expire.json",
		StateOutcome: "notifier/approval-outcome.json",
	}
	for state, s := range def.States {
		if _, ok := samples[state]; s.Type == "Task" && !ok {
			t.Errorf("task %q has no sample", state)
		}
	}
	for state, sample := range samples {
		data, err := os.ReadFile(filepath.Join("..", "events", filepath.FromSlash(sample)))
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("%s: %v", sample, err)
		}
		got := map[string]any{}
		for k, v := range def.States[state].Parameters.Payload {
			if name, ok := strings.CutSuffix(k, ".$"); ok {
				got[name] = want[name] // a JSONPath: its value comes from the execution
				continue
			}
			got[k] = v
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: payload %v (filled in: %v), want the keys and values of events/%s: %v",
				state, def.States[state].Parameters.Payload, got, sample, want)
		}
	}
}

var aslValidator = sync.OnceValues(func() (string, error) {
	script, err := installer.Script("install-asl-validator.sh")
	if err != nil {
		return "", err
	}
	out, err := installer.Run(script)
	if err != nil {
		return "", err
	}
	bin := installer.LastLine(out)
	if !installer.Executable(bin) {
		return "", fmt.Errorf("run %s: %q is not an executable", script, bin)
	}
	return bin, nil
})

// validateASL runs asl-validator on def: nil when it is valid, the
// validator's report when it is not. A validator that cannot run fails
// the test.
func validateASL(t *testing.T, def []byte) error {
	t.Helper()
	bin, err := aslValidator()
	if err != nil {
		t.Fatalf("install asl-validator: %v", err)
	}
	path := filepath.Join(t.TempDir(), "definition.asl.json")
	if err := os.WriteFile(path, def, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--json-path", path).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return errors.New(strings.TrimSpace(string(out)))
	}
	t.Fatalf("asl-validator: %v\n%s", err, out)
	return nil
}

// TestApprovalsDefinitionValid runs the Amazon States Language validator
// (npm asl-validator, pinned by install-asl-validator.sh) on the
// definition as deployed, JSONPaths and Resource ARNs included; and, so
// that a validator that passes everything cannot pass this test, on
// broken copies of it.
func TestApprovalsDefinitionValid(t *testing.T) {
	t.Parallel()
	def := defaultStack(t).definition(t)
	if err := validateASL(t, def); err != nil {
		t.Fatalf("the approvals state machine's definition is invalid:\n%s\n%s", err, def)
	}
	for _, tc := range []struct {
		name   string
		mutate func(states map[string]any)
		want   string // in the validator's report
	}{
		{"missing target", func(s map[string]any) { s[StateWait].(map[string]any)["Next"] = "Approved" }, "MISSING_TRANSITION_TARGET"},
		{"catch to nowhere", func(s map[string]any) {
			delete(s, StateExpire)
		}, "MISSING_TRANSITION_TARGET"},
		{"outcome to nowhere", func(s map[string]any) { delete(s, StateOutcome) }, "MISSING_TRANSITION_TARGET"},
		{"result path not a path", func(s map[string]any) {
			s[StateExpire].(map[string]any)["ResultPath"] = "expired"
		}, "ResultPath"},
		{"timeout path not a path", func(s map[string]any) {
			s[StateWait].(map[string]any)["TimeoutSecondsPath"] = "timeout_seconds"
		}, "TimeoutSecondsPath"},
		{"two timeouts", func(s map[string]any) { s[StateWait].(map[string]any)["TimeoutSeconds"] = 3600 }, "TASK_TIMEOUT"},
		{"resource not an ARN", func(s map[string]any) { s[StateExpire].(map[string]any)["Resource"] = "lambda:invoke" }, "Resource"},
		{"end and next", func(s map[string]any) { s[StateExpire].(map[string]any)["End"] = true }, "Expire"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d map[string]any
			if err := json.Unmarshal(def, &d); err != nil {
				t.Fatal(err)
			}
			tc.mutate(d["States"].(map[string]any))
			broken, _ := json.Marshal(d)
			err := validateASL(t, broken)
			if err == nil {
				t.Fatalf("asl-validator accepts a broken definition:\n%s", broken)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("asl-validator's report does not mention %q:\n%v", tc.want, err)
			}
		})
	}
}

// TestApprovalsStateMachineARN: the approvals function names the state
// machine by the ARN its name makes (it cannot refer to it: the state
// machine invokes it), in its environment and its role; that ARN is the
// state machine's, in the documented format.
func TestApprovalsStateMachineARN(t *testing.T) {
	eachStack(t, func(t *testing.T, st *stackTemplate) {
		_, props := st.approvalsStateMachine(t)
		want := approvalsStateMachineARN(st.cfg.Stage)
		if !strings.HasSuffix(want, ":stateMachine:"+props["StateMachineName"].(string)) {
			t.Errorf("state machine named %v, its ARN taken as %s", props["StateMachineName"], want)
		}
		fn := st.resource(t, st.functionID(t, "approvals"))["Properties"].(map[string]any)
		env := fn["Environment"].(map[string]any)["Variables"].(map[string]any)[awsconfig.EnvApprovalsStateMachine]
		if got := render(env); got != want {
			t.Errorf("approvals function's %s: %s, want %s", awsconfig.EnvApprovalsStateMachine, got, want)
		}
		deployed, err := resolve(env)
		if err != nil {
			t.Fatal(err)
		}
		// arn:partition:states:region:account:stateMachine:name, the
		// name 1 to 80 letters, digits, - and _.
		if !regexp.MustCompile(`^arn:aws:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]{1,80}$`).MatchString(deployed) {
			t.Errorf("%s is not a state machine's ARN", deployed)
		}
		var answers []string
		for _, g := range grants(st.identityStatements()[roleRef("approvals")]) {
			if strings.HasPrefix(g, "states:") {
				answers = append(answers, g)
			}
		}
		if w := []string{"states:SendTaskFailure " + want, "states:SendTaskSuccess " + want}; !slices.Equal(answers, w) {
			t.Errorf("approvals function's Step Functions grants %q, want %q", answers, w)
		}
	})
}

// TestApprovalsFunctionInvokers: the approvals state machine is the only
// thing that invokes the approvals function: no API route, no event
// source, no resource-based permission, and no role but the state
// machine's may invoke it. No role may invoke any other function, but the
// state machine's the notifier (to update the approvers' messages).
func TestApprovalsFunctionInvokers(t *testing.T) {
	st := defaultStack(t)
	fn := friendly(st.functionID(t, "approvals"))
	for id, p := range st.resources("AWS::Lambda::Permission") {
		if strings.Contains(render(p["Properties"].(map[string]any)["FunctionName"]), fn) {
			t.Errorf("permission %s lets %v invoke the approvals function", id, p["Properties"].(map[string]any)["Principal"])
		}
	}
	for id, m := range st.resources("AWS::Lambda::EventSourceMapping") {
		if strings.Contains(render(m["Properties"].(map[string]any)["FunctionName"]), fn) {
			t.Errorf("event source mapping %s invokes the approvals function", id)
		}
	}
	for id, m := range st.resources("AWS::ApiGateway::Method") {
		if in, ok := m["Properties"].(map[string]any)["Integration"]; ok && strings.Contains(render(in.(map[string]any)["Uri"]), "${"+fn+".Arn}") {
			t.Errorf("API method %s invokes the approvals function", id)
		}
	}
	var invokers []string
	for role, stmts := range st.identityStatements() {
		for _, g := range grants(stmts) {
			if strings.HasPrefix(g, "lambda:") {
				invokers = append(invokers, role+" "+g)
			}
		}
	}
	sort.Strings(invokers)
	want := []string{stateMachineRole + " lambda:InvokeFunction ${ApprovalsFunction.Arn}",
		stateMachineRole + " lambda:InvokeFunction ${ApprovalsFunction.Arn}:*",
		stateMachineRole + " lambda:InvokeFunction ${NotifierFunction.Arn}",
		stateMachineRole + " lambda:InvokeFunction ${NotifierFunction.Arn}:*"}
	if !slices.Equal(invokers, want) {
		t.Errorf("Lambda grants %q, want %q", invokers, want)
	}
}

// TestNoDependencyCycle: CloudFormation refuses a template whose
// resources depend on each other in a circle (through Ref, Fn::GetAtt,
// Fn::Sub or DependsOn), about which synth only prints a warning. The approvals
// function and its state machine are the risk: the state machine invokes
// the function, whose role answers the state machine's task.
func TestNoDependencyCycle(t *testing.T) {
	eachStack(t, func(t *testing.T, st *stackTemplate) {
		if cycle := dependencyCycle(st.json["Resources"].(map[string]any)); cycle != nil {
			t.Errorf("circular dependency: %s", strings.Join(cycle, " -> "))
		}
	})
}

var subRef = regexp.MustCompile(`\$\{([A-Za-z0-9]+)[.}]`)

// dependencyCycle returns a cycle among resources, nil if there is none.
func dependencyCycle(resources map[string]any) []string {
	deps := map[string][]string{}
	var walk func(from string, v any)
	walk = func(from string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				switch k {
				case "Ref":
					if s, ok := e.(string); ok {
						deps[from] = append(deps[from], s)
					}
				case "Fn::GetAtt":
					if l, ok := e.([]any); ok && len(l) > 0 {
						if s, ok := l[0].(string); ok {
							deps[from] = append(deps[from], s)
						}
					}
				case "Fn::Sub":
					s, _ := e.(string)
					if l, ok := e.([]any); ok && len(l) > 0 {
						s, _ = l[0].(string)
						walk(from, l[1:])
					}
					for _, m := range subRef.FindAllStringSubmatch(s, -1) {
						deps[from] = append(deps[from], m[1])
					}
				}
				walk(from, e)
			}
		case []any:
			for _, e := range v {
				walk(from, e)
			}
		}
	}
	ids := make([]string, 0, len(resources))
	for id, r := range resources {
		ids = append(ids, id)
		r := r.(map[string]any)
		walk(id, r["Properties"])
		deps[id] = append(deps[id], stringList(r["DependsOn"])...)
	}
	sort.Strings(ids)
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(id string) []string
	visit = func(id string) []string {
		if _, ok := resources[id]; !ok {
			return nil // a pseudo parameter or a template parameter
		}
		switch state[id] {
		case onPath:
			return append(slices.Clone(path[slices.Index(path, id):]), id)
		case done:
			return nil
		}
		state[id] = onPath
		path = append(path, id)
		for _, d := range deps[id] {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[id] = done
		return nil
	}
	for _, id := range ids {
		if c := visit(id); c != nil {
			return c
		}
	}
	return nil
}
