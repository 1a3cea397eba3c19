package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const example = "../../policy/examples/policy.yaml"

// warden runs the command line and returns its exit status and outputs.
func warden(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", "version: 1\nrules:\n  - effect: allow\n    acton: git:push\n")
	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  string
		stderrs string
	}{
		{"valid", []string{"policy", "validate", example}, 0, example + ": ok (18 rules, version ", ""},
		{"invalid", []string{"policy", "validate", bad}, 1, "",
			bad + ":3:5: missing required field \"action\" [missing-field]\n" +
				bad + ":4:5: unknown field \"acton\" (did you mean \"action\"?) [unknown-field]\n" +
				"\thint: allowed here: id, description, effect, who, action, resource, command, ignore_case, when\n"},
		{"missing file", []string{"policy", "validate", filepath.Join(dir, "nope.yaml")}, 1, "", "no such file or directory"},
		{"no args", []string{"policy", "validate"}, 2, "", "warden: requires at least 1 arg(s), only received 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := warden(t, tt.args...)
			if code != tt.code || !strings.HasPrefix(out, tt.stdout) || !strings.Contains(errOut, tt.stderrs) {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", "version: 1\nrules:\n  - effect: deny\n    action: git:pull\n")
	code, out, _ := warden(t, "policy", "validate", "--format", "json", bad)
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 1 {
		t.Fatalf("exit %d, output %q: %v", code, out, err)
	}
	if len(got) != 1 || got[0]["code"] != "bad-pattern" || got[0]["line"] != 4.0 || got[0]["column"] != 13.0 {
		t.Errorf("got %v", got)
	}
}

func TestPolicyTest(t *testing.T) {
	t.Parallel()
	code, out, _ := warden(t, "policy", "test", "../../policy/examples")
	if code != 0 || !strings.HasSuffix(out, "PASS: 36/36\n") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}

	dir := t.TempDir()
	writeFile(t, dir, "policy.yaml", "version: 1\nrules:\n  - {id: push, effect: allow, action: git:push}\n")
	writeFile(t, dir, "a_test.yaml", `tests:
  - name: push is allowed
    request: {action: git:push, resource: "h/o/r:refs/heads/x"}
    expect: {effect: allow, rule: push}
  - name: fetch is allowed
    request: {action: git:fetch, resource: "h/o/r:refs/heads/x"}
    expect: {effect: allow}
`)
	code, out, _ = warden(t, "policy", "test", dir)
	want := filepath.Join(dir, "a_test.yaml") + ":5: FAIL: fetch is allowed: expected allow, got deny by the default deny\n" +
		strings.Repeat("-", 80) + "\nPASS: 1/2\nFAIL: 1/2\n"
	if code != 1 || out != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}

	code, out, _ = warden(t, "policy", "test", "--format", "json", dir)
	var report struct {
		Pass, Total int
		Results     []struct {
			Name, Location, Effect string
			Pass                   bool
		}
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 1 {
		t.Fatalf("exit %d, output %q: %v", code, out, err)
	}
	if report.Pass != 1 || report.Total != 2 || report.Results[1].Pass || report.Results[1].Effect != "deny" {
		t.Errorf("report %+v", report)
	}

	empty := t.TempDir()
	if code, _, errOut := warden(t, "policy", "test", empty); code != 2 || !strings.Contains(errOut, "no test files") {
		t.Errorf("empty dir: exit %d, %s", code, errOut)
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	code, out, _ := warden(t, "policy", "explain", example, "--request",
		`{project: project-a, agent: claude-code, action: git:push, resource: "github.com/acme/web:refs/heads/main", time: "2026-11-26T10:00:00+01:00"}`)
	for _, want := range []string{
		"decision: approve\n",
		"rule:     main-needs-approval (" + example + ":34:5)\n",
		"-  allow    push-feature-branches",
		`resource "github.com/acme/web:refs/heads/main" does not match "github.com/acme/web:refs/heads/feature/*"`,
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}

	code, out, _ = warden(t, "policy", "explain", example, "--format", "json", "--project", "project-a", "--agent", "claude-code",
		"--action", "tool:Bash", "--command", "cd /w && sudo rm -rf /")
	var got struct {
		Effect, Rule, Command string
		Rules                 []struct {
			Rule    string
			Matched bool
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("exit %d, output %q: %v", code, out, err)
	}
	if got.Effect != "deny" || got.Rule != "no-root-wipe" || got.Command != "rm -rf /" || len(got.Rules) == 0 {
		t.Errorf("got %+v", got)
	}

	if code, _, errOut := warden(t, "policy", "explain", example); code != 2 || !strings.Contains(errOut, "--request") {
		t.Errorf("no request: exit %d, %s", code, errOut)
	}
}

// TestSchemaValidatesExample checks the generated JSON Schema against the
// example policy and its tests with an independent JSON Schema validator,
// and that it refuses what the loader refuses.
func TestSchemaValidatesExample(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		flag, file string
	}{
		{"", example},
		{"--tests", "../../policy/examples/policy_test.yaml"},
	} {
		args := []string{"policy", "schema"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		code, out, _ := warden(t, args...)
		if code != 0 {
			t.Fatalf("schema exit %d", code)
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("schema.json", doc); err != nil {
			t.Fatal(err)
		}
		schema, err := c.Compile("schema.json")
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		v = jsonCompatible(v)
		if err := schema.Validate(v); err != nil {
			t.Errorf("%s does not validate: %v", tc.file, err)
		}
		if tc.flag == "" {
			m := v.(map[string]any)
			m["rules"].([]any)[0].(map[string]any)["acton"] = "git:push"
			if err := schema.Validate(v); err == nil {
				t.Error("schema accepts an unknown rule field")
			}
		}
	}
}

// jsonCompatible turns YAML's decoded values into what a JSON decoder makes.
func jsonCompatible(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonCompatible(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonCompatible(e)
		}
		return x
	case int:
		return json.Number(strconv.Itoa(x))
	}
	return v
}
