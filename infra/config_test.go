package main

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	dir := functionsDir(t)
	got, err := LoadConfig(contextOf(map[string]any{"functionsDir": dir}))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.FunctionsDir = dir
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if want := (Config{Stage: "dev", ArchiveRetentionDays: 365, FunctionsDir: filepath.Join("..", "build", "functions"),
		LogRetentionDays: 90, ThrottleRateLimit: 50, ThrottleBurstLimit: 100, APIGatewayCloudWatchRole: true}); !reflect.DeepEqual(DefaultConfig(), want) {
		t.Errorf("defaults %+v, want %+v", DefaultConfig(), want)
	}
}

func TestConfigValues(t *testing.T) {
	t.Parallel()
	dir := functionsDir(t)
	file := filepath.Join(t.TempDir(), "prod.json")
	if err := os.WriteFile(file, []byte(`{"stage": "prod", "archiveRetentionDays": 2555, "slack": true,
		"bedrockModels": ["anthropic.claude-sonnet-4-5-20250929-v1:0"], "logRetentionDays": 30,
		"alarmEmail": "oncall@example.com", "throttleRateLimit": 20.5, "throttleBurstLimit": 40,
		"apiGatewayCloudWatchRole": false, "agentPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		context map[string]any
		want    func(*Config)
	}{
		{"file", map[string]any{"config": file}, func(c *Config) {
			c.Stage, c.ArchiveRetentionDays, c.Slack = "prod", 2555, true
			c.BedrockModels = []string{"anthropic.claude-sonnet-4-5-20250929-v1:0"}
			c.LogRetentionDays, c.AlarmEmail, c.ThrottleRateLimit, c.ThrottleBurstLimit = 30, "oncall@example.com", 20.5, 40
			c.APIGatewayCloudWatchRole = false
			c.AgentPolicyARNs = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
		}},
		{"context over file", map[string]any{"config": file, "stage": "staging", "slack": "false", "bedrockModels": "",
			"agentPolicyArns": "arn:aws:iam::123456789012:policy/AgentData"}, func(c *Config) {
			c.Stage, c.ArchiveRetentionDays, c.Slack = "staging", 2555, false
			c.LogRetentionDays, c.AlarmEmail, c.ThrottleRateLimit, c.ThrottleBurstLimit = 30, "oncall@example.com", 20.5, 40
			c.APIGatewayCloudWatchRole = false
			c.AgentPolicyARNs = []string{"arn:aws:iam::123456789012:policy/AgentData"}
		}},
		{"strings from -c", map[string]any{"archiveRetentionDays": "30", "slack": "true",
			"bedrockModels":   " anthropic.claude-sonnet-4-5-20250929-v1:0 , eu.anthropic.claude-haiku-4-5-20251001-v1:0",
			"agentPolicyArns": "arn:aws:iam::aws:policy/ReadOnlyAccess, arn:aws:iam::123456789012:policy/teams/data/AgentData,arn:aws-us-gov:iam::aws:policy/AmazonS3ReadOnlyAccess"}, func(c *Config) {
			c.ArchiveRetentionDays, c.Slack = 30, true
			c.BedrockModels = []string{"anthropic.claude-sonnet-4-5-20250929-v1:0", "eu.anthropic.claude-haiku-4-5-20251001-v1:0"}
			c.AgentPolicyARNs = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/teams/data/AgentData",
				"arn:aws-us-gov:iam::aws:policy/AmazonS3ReadOnlyAccess"}
		}},
		{"typed from cdk.json", map[string]any{"archiveRetentionDays": float64(10), "slack": true,
			"bedrockModels": []any{"amazon.nova-pro-v1:0"}}, func(c *Config) {
			c.ArchiveRetentionDays, c.Slack, c.BedrockModels = 10, true, []string{"amazon.nova-pro-v1:0"}
		}},
		{"list as a JSON string", map[string]any{"bedrockModels": `["amazon.nova-pro-v1:0"]`}, func(c *Config) {
			c.BedrockModels = []string{"amazon.nova-pro-v1:0"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := map[string]any{"functionsDir": dir}
			for k, v := range tc.context {
				ctx[k] = v
			}
			got, err := LoadConfig(contextOf(ctx))
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			want.FunctionsDir = dir
			tc.want(&want)
			if len(want.BedrockModels) == 0 && len(got.BedrockModels) == 0 {
				want.BedrockModels, got.BedrockModels = nil, nil
			}
			if len(want.AgentPolicyARNs) == 0 && len(got.AgentPolicyARNs) == 0 {
				want.AgentPolicyARNs, got.AgentPolicyARNs = nil, nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	good := functionsDir(t)
	empty := t.TempDir()
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }

	amd64 := t.TempDir()
	for _, fn := range Functions {
		writeBootstrap(t, filepath.Join(amd64, fn, "bootstrap"), elf.EM_X86_64, 0o755)
	}
	mixed := functionsDir(t)
	if err := os.Chmod(filepath.Join(mixed, "llm", "bootstrap"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mixed, "archiver", "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(mixed, "api", "bootstrap")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(mixed, "api", "bootstrap"), 0o755); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badFile, []byte(`{"stage": "prod", "archiveRetention": 30, "slack": "yes please"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var manyPolicies []any
	for i := range MaxAgentPolicies + 1 {
		manyPolicies = append(manyPolicies, fmt.Sprintf("arn:aws:iam::123456789012:policy/Agent%d", i))
	}
	notJSON := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(notJSON, []byte(`stage: prod`), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		context map[string]any
		want    string
	}{
		{"no bootstrap", map[string]any{"functionsDir": empty},
			"warden config: function api: " + abs(filepath.Join(empty, "api", "bootstrap")) + " does not exist: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)\n" +
				"warden config: function llm: " + abs(filepath.Join(empty, "llm", "bootstrap")) + " does not exist: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)\n" +
				"warden config: function archiver: " + abs(filepath.Join(empty, "archiver", "bootstrap")) + " does not exist: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)\n" +
				"warden config: function notifier: " + abs(filepath.Join(empty, "notifier", "bootstrap")) + " does not exist: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)\n" +
				"warden config: function slack: " + abs(filepath.Join(empty, "slack", "bootstrap")) + " does not exist: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)\n" +
				"warden config: function approvals: " + abs(filepath.Join(empty, "approvals", "bootstrap")) + " does not exist: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)\n" +
				"warden config: function ingest: " + abs(filepath.Join(empty, "ingest", "bootstrap")) + " does not exist: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)"},
		{"wrong architecture", map[string]any{"functionsDir": amd64},
			"warden config: function api: " + filepath.Join(amd64, "api", "bootstrap") + " is built for X86_64, not arm64 (the functions run on ARM_64): run `make functions` first"},
		{"directory, not executable, not ELF", map[string]any{"functionsDir": mixed},
			"warden config: function api: " + filepath.Join(mixed, "api", "bootstrap") + " is not a regular file: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)\n" +
				"warden config: function llm: " + filepath.Join(mixed, "llm", "bootstrap") + " is not executable: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)\n" +
				"warden config: function archiver: " + filepath.Join(mixed, "archiver", "bootstrap") + " is not a Linux (ELF) executable: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)"},
		{"empty functions dir", map[string]any{"functionsDir": ""}, "warden config: functionsDir is empty"},
		{"stage", map[string]any{"functionsDir": good, "stage": "Prod_1"},
			`warden config: stage "Prod_1": use 1 to 20 lower-case letters, digits and hyphens, starting with a letter (it names the stack Warden-<stage>, the secrets warden/<stage>/ and the API stage)`},
		{"retention zero", map[string]any{"functionsDir": good, "archiveRetentionDays": "0"},
			"warden config: archiveRetentionDays 0: must be 1 to 36500 (the Object Lock COMPLIANCE retention of every archived object; it cannot be shortened once written)"},
		{"retention too long", map[string]any{"functionsDir": good, "archiveRetentionDays": float64(36501)},
			"warden config: archiveRetentionDays 36501: must be 1 to 36500"},
		{"retention not a number", map[string]any{"functionsDir": good, "archiveRetentionDays": "a year"},
			`warden config: archiveRetentionDays (context): want a whole number, not "a year"`},
		{"retention fraction", map[string]any{"functionsDir": good, "archiveRetentionDays": 1.5},
			`warden config: archiveRetentionDays (context): want a whole number, not 1.5`},
		{"slack", map[string]any{"functionsDir": good, "slack": "maybe"},
			`warden config: slack (context): want true or false, not "maybe"`},
		{"model ARN", map[string]any{"functionsDir": good, "bedrockModels": "arn:aws:bedrock:eu-central-1::foundation-model/anthropic.claude-v2"},
			`warden config: bedrockModels: "arn:aws:bedrock:eu-central-1::foundation-model/anthropic.claude-v2": give the model ID (anthropic.claude-…-v1:0) or inference profile ID (eu.anthropic.…), not an ARN`},
		{"model wildcard", map[string]any{"functionsDir": good, "bedrockModels": []any{"anthropic.*"}},
			`warden config: bedrockModels: "anthropic.*" is not a Bedrock model ID such as anthropic.claude-sonnet-4-5-20250929-v1:0 (no wildcards)`},
		{"model twice", map[string]any{"functionsDir": good, "bedrockModels": "amazon.nova-pro-v1:0,amazon.nova-pro-v1:0"},
			`warden config: bedrockModels: "amazon.nova-pro-v1:0" is listed twice`},
		{"model list of numbers", map[string]any{"functionsDir": good, "bedrockModels": []any{float64(1)}},
			`warden config: bedrockModels (context): want a list of strings, not one holding a number`},
		{"agent policy not an ARN", map[string]any{"functionsDir": good, "agentPolicyArns": "ReadOnlyAccess"},
			`warden config: agentPolicyArns: "ReadOnlyAccess" is not an IAM managed policy ARN: use arn:aws:iam::aws:policy/<name> (AWS managed) or arn:aws:iam::<12-digit account ID>:policy/[<path>/]<name> (no wildcards)`},
		{"agent policies: a role, a wildcard, an account of 11 digits, twice", map[string]any{"functionsDir": good, "agentPolicyArns": []any{
			"arn:aws:iam::123456789012:role/Admin", "arn:aws:iam::aws:policy/*", "arn:aws:iam::12345678901:policy/AgentData",
			"arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess"}},
			`warden config: agentPolicyArns: "arn:aws:iam::123456789012:role/Admin" is not an IAM managed policy ARN: use arn:aws:iam::aws:policy/<name> (AWS managed) or arn:aws:iam::<12-digit account ID>:policy/[<path>/]<name> (no wildcards)` + "\n" +
				`warden config: agentPolicyArns: "arn:aws:iam::aws:policy/*" is not an IAM managed policy ARN: use arn:aws:iam::aws:policy/<name> (AWS managed) or arn:aws:iam::<12-digit account ID>:policy/[<path>/]<name> (no wildcards)` + "\n" +
				`warden config: agentPolicyArns: "arn:aws:iam::12345678901:policy/AgentData" is not an IAM managed policy ARN: use arn:aws:iam::aws:policy/<name> (AWS managed) or arn:aws:iam::<12-digit account ID>:policy/[<path>/]<name> (no wildcards)` + "\n" +
				`warden config: agentPolicyArns: "arn:aws:iam::aws:policy/ReadOnlyAccess" is listed twice`},
		{"agent policies: too many", map[string]any{"functionsDir": good, "agentPolicyArns": manyPolicies},
			"warden config: agentPolicyArns: 21 policies: IAM attaches at most 20 managed policies to a role (10 unless the account's quota was raised)"},
		{"agent policies: a number", map[string]any{"functionsDir": good, "agentPolicyArns": float64(1)},
			`warden config: agentPolicyArns (context): want a list of strings, not a number`},
		{"log retention", map[string]any{"functionsDir": good, "logRetentionDays": "100"},
			"warden config: logRetentionDays 100: CloudWatch Logs accepts only 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"},
		{"email", map[string]any{"functionsDir": good, "alarmEmail": "oncall"}, `warden config: alarmEmail "oncall" is not an email address`},
		{"throttling", map[string]any{"functionsDir": good, "throttleRateLimit": "0", "throttleBurstLimit": "0"},
			"warden config: throttleRateLimit 0: must be a positive number of requests per second\nwarden config: throttleBurstLimit 0: must be at least 1"},
		{"config file keys", map[string]any{"functionsDir": good, "config": badFile},
			"warden config: config: config file " + badFile + `: slack: want true or false, not "yes please"; unknown key "archiveRetention"`},
		{"config file missing", map[string]any{"functionsDir": good, "config": filepath.Join(empty, "none.json")},
			"warden config: config: read config file: open " + filepath.Join(empty, "none.json") + ": no such file or directory"},
		{"config file not JSON", map[string]any{"functionsDir": good, "config": notJSON},
			"warden config: config: config file " + notJSON + " is not a JSON object: invalid character 's' looking for beginning of value"},
		{"several at once", map[string]any{"functionsDir": good, "stage": "", "archiveRetentionDays": "-1"},
			"warden config: stage \"\": use 1 to 20 lower-case letters, digits and hyphens, starting with a letter (it names the stack Warden-<stage>, the secrets warden/<stage>/ and the API stage)\n" +
				"warden config: archiveRetentionDays -1: must be 1 to 36500 (the Object Lock COMPLIANCE retention of every archived object; it cannot be shortened once written)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadConfig(contextOf(tc.context))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			// Full messages are compared whole; a few long ones by their start.
			if err.Error() != tc.want && !(strings.HasPrefix(err.Error(), tc.want) && strings.Count(tc.want, "\n") == 0 && len(tc.want) > 60) {
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}

func TestIsInferenceProfile(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"anthropic.claude-sonnet-4-5-20250929-v1:0":        false,
		"eu.anthropic.claude-sonnet-4-5-20250929-v1:0":     true,
		"global.anthropic.claude-sonnet-4-5-20250929-v1:0": true,
		"us-gov.anthropic.claude-3-haiku-20240307-v1:0":    true,
		"amazon.nova-pro-v1:0":                             false,
		"eu.nova":                                          false,
	} {
		if got := IsInferenceProfile(id); got != want {
			t.Errorf("IsInferenceProfile(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestOutdir: the CDK CLI runs in the repository root and passes a
// relative CDK_OUTDIR; the app runs in infra/ (cdk.json: cd infra && go run .).
func TestOutdir(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"cdk.out", filepath.Join("..", "cdk.out")},
		{"/tmp/x/cdk.out", "/tmp/x/cdk.out"},
		{"", ""},
	} {
		t.Setenv("CDK_OUTDIR", tc.env)
		got := outdir()
		if (got == nil) != (tc.want == "") || (got != nil && *got != tc.want) {
			t.Errorf("CDK_OUTDIR=%q: outdir %v, want %q", tc.env, got, tc.want)
		}
	}
}
