package main

import (
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestMain(m *testing.M) {
	// The jsii runtime runs the CDK in node: keep it quiet and offline.
	for k, v := range map[string]string{
		"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
		"CDK_DISABLE_VERSION_CHECK":                     "true",
		"CDK_DISABLE_CLI_TELEMETRY":                     "true",
		"AWS_EC2_METADATA_DISABLED":                     "true",
	} {
		if _, set := os.LookupEnv(k); !set {
			os.Setenv(k, v)
		}
	}
	code := m.Run()
	jsii.Close()
	if sharedFunctions != "" {
		os.RemoveAll(sharedFunctions)
	}
	os.Exit(code)
}

// must runs f, turning the panic of a failed CDK assertion into a test
// failure with its message.
func must(t *testing.T, what string, f func()) {
	t.Helper()
	failed := func() (msg any) {
		defer func() { msg = recover() }()
		f()
		return nil
	}()
	if failed != nil {
		t.Fatalf("%s: %v", what, failed)
	}
}

// writeBootstrap writes a minimal ELF header for machine: enough for
// debug/elf, and for the stack's check of each function's bootstrap.
func writeBootstrap(t *testing.T, path string, machine elf.Machine, mode os.FileMode) {
	t.Helper()
	h := make([]byte, 64)
	copy(h, []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
	le := binary.LittleEndian
	le.PutUint16(h[16:], uint16(elf.ET_EXEC))
	le.PutUint16(h[18:], uint16(machine))
	le.PutUint32(h[20:], uint32(elf.EV_CURRENT))
	le.PutUint16(h[52:], 64) // e_ehsize
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, h, mode); err != nil {
		t.Fatal(err)
	}
}

// functionsDir is a directory with a placeholder arm64 bootstrap for each
// function.
func functionsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range Functions {
		writeBootstrap(t, filepath.Join(dir, name, "bootstrap"), elf.EM_AARCH64, 0o755)
	}
	return dir
}

// contextOf is a lookup over a map, in the manner of TryGetContext.
func contextOf(m map[string]any) func(string) any {
	return func(key string) any { return m[key] }
}

// stackTemplate is a synthesized stack: its assertions template and its
// JSON.
type stackTemplate struct {
	cfg       Config
	stackName string
	template  assertions.Template
	json      map[string]any
}

var (
	templatesMu sync.Mutex
	templates   = map[string]*stackTemplate{}
	// sharedFunctions outlives the tests that share the templates.
	sharedFunctions string
)

// synth synthesizes the stack for context (functionsDir added), once per
// name: tests share the templates, which take a second or two each.
func synth(t *testing.T, name string, context map[string]any) *stackTemplate {
	t.Helper()
	templatesMu.Lock()
	defer templatesMu.Unlock()
	if st, ok := templates[name]; ok {
		return st
	}
	if sharedFunctions == "" {
		dir, err := os.MkdirTemp("", "warden-infra-test-")
		if err != nil {
			t.Fatal(err)
		}
		sharedFunctions = dir // removed by TestMain
		for _, fn := range Functions {
			writeBootstrap(t, filepath.Join(dir, fn, "bootstrap"), elf.EM_AARCH64, 0o755)
		}
	}
	ctx := map[string]any{"functionsDir": sharedFunctions}
	for k, v := range context {
		ctx[k] = v
	}
	cfg, err := LoadConfig(contextOf(ctx))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	st := &stackTemplate{cfg: cfg}
	must(t, "synth", func() {
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
		stack := NewStack(app, cfg)
		st.stackName = *stack.StackName()
		st.template = assertions.Template_FromStack(stack, nil)
		st.json = *st.template.ToJSON()
	})
	templates[name] = st
	return st
}

// defaultStack is the stack with the default configuration.
func defaultStack(t *testing.T) *stackTemplate { return synth(t, "default", nil) }

// fullStack turns on every option.
func fullStack(t *testing.T) *stackTemplate {
	return synth(t, "full", map[string]any{
		"stage":                "prod",
		"archiveRetentionDays": "2555",
		"slack":                "true",
		"bedrockModels":        "anthropic.claude-sonnet-4-5-20250929-v1:0,eu.anthropic.claude-haiku-4-5-20251001-v1:0",
		"alarmEmail":           "oncall@example.com",
		"logRetentionDays":     float64(365),
		"agentPolicyArns":      []any{"arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/warden/AgentData"},
	})
}

// resources returns the template's resources of type typ by logical ID.
func (st *stackTemplate) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range st.json["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

// resource returns one resource by logical ID.
func (st *stackTemplate) resource(t *testing.T, id string) map[string]any {
	t.Helper()
	r, ok := st.json["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	return r
}

// only is an assertions template of the one resource id, so that
// HasResourceProperties checks that resource and no other.
func (st *stackTemplate) only(t *testing.T, id string) assertions.Template {
	t.Helper()
	var tmpl assertions.Template
	must(t, "template of "+id, func() {
		tmpl = assertions.Template_FromJSON(&map[string]any{
			"Resources": map[string]any{id: st.resource(t, id)},
		}, nil)
	})
	return tmpl
}

// outputRef returns the logical ID an output refers to ({"Ref": ID}).
func (st *stackTemplate) outputRef(t *testing.T, output string) string {
	t.Helper()
	o, ok := st.json["Outputs"].(map[string]any)[output].(map[string]any)
	if !ok {
		t.Fatalf("no output %s", output)
	}
	ref, ok := o["Value"].(map[string]any)["Ref"].(string)
	if !ok {
		t.Fatalf("output %s is not a Ref: %v", output, o["Value"])
	}
	return ref
}

// functionID returns the logical ID of function name (api, llm, archiver,
// notifier, slack, approvals, ingest).
func (st *stackTemplate) functionID(t *testing.T, name string) string {
	t.Helper()
	return st.logicalID(t, "AWS::Lambda::Function", strings.ToUpper(name[:1])+name[1:]+"Function")
}

// logicalID returns the logical ID of the one resource of type typ whose
// friendly ID is name: "OutboxTable" is OutboxTable0731F305.
func (st *stackTemplate) logicalID(t *testing.T, typ, name string) string {
	t.Helper()
	var ids []string
	for id := range st.resources(typ) {
		if friendly(id) == name {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d resources %s of type %s, want 1: %q", len(ids), name, typ, ids)
	}
	return ids[0]
}

// roleRef is the rendered reference to function fn's role, as the
// identity policies name it: ${ApiRole}.
func roleRef(fn string) string { return "${" + strings.ToUpper(fn[:1]) + fn[1:] + "Role}" }

var cdkHash = regexp.MustCompile(`^([A-Za-z0-9]+?)[0-9A-F]{8}$`)

// friendly strips the hash CDK appends to a logical ID: AuditTableB07F8EEB
// is AuditTable.
func friendly(id string) string {
	if m := cdkHash.FindStringSubmatch(id); m != nil {
		return m[1]
	}
	return id
}

// render writes a CloudFormation value as a string, intrinsic functions as
// ${Name} and ${Name.Attribute} with friendly names, Fn::Join joined:
// "${AuditTable.Arn}/index/*".
func render(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if ref, ok := v["Ref"].(string); ok {
			return "${" + friendly(ref) + "}"
		}
		if ga, ok := v["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			return "${" + friendly(ga[0].(string)) + "." + ga[1].(string) + "}"
		}
		if j, ok := v["Fn::Join"].([]any); ok && len(j) == 2 {
			var parts []string
			for _, p := range j[1].([]any) {
				parts = append(parts, render(p))
			}
			return strings.Join(parts, j[0].(string))
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// stringList returns a value that is one string or a list of them as a list.
func stringList(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			out[i] = render(e)
		}
		return out
	}
	return []string{render(v)}
}

// statement is one IAM policy statement, rendered.
type statement struct {
	where     string // the policy and the statement's index
	effect    string
	actions   []string
	resources []string
}

// identityStatements returns every statement of every identity policy in
// the template: AWS::IAM::Policy, AWS::IAM::ManagedPolicy and the inline
// Policies of AWS::IAM::Role, each with the roles it applies to.
func (st *stackTemplate) identityStatements() map[string][]statement {
	byRole := map[string][]statement{}
	add := func(roles []string, where string, doc any) {
		stmts, _ := doc.(map[string]any)["Statement"].([]any)
		for i, s := range stmts {
			s := s.(map[string]any)
			out := statement{
				where:     fmt.Sprintf("%s statement %d", where, i),
				effect:    render(s["Effect"]),
				actions:   stringList(s["Action"]),
				resources: stringList(s["Resource"]),
			}
			if s["NotAction"] != nil || s["NotResource"] != nil {
				out.actions = append(out.actions, "NotAction/NotResource:"+render(s["NotAction"])+render(s["NotResource"]))
			}
			for _, role := range roles {
				byRole[role] = append(byRole[role], out)
			}
		}
	}
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for id, r := range st.resources(typ) {
			p := r["Properties"].(map[string]any)
			roles := stringList(p["Roles"])
			if len(roles) == 0 {
				roles = []string{"(no role) " + id}
			}
			add(roles, friendly(id), p["PolicyDocument"])
		}
	}
	for id, r := range st.resources("AWS::IAM::Role") {
		p := r["Properties"].(map[string]any)
		inline, _ := p["Policies"].([]any)
		for _, pol := range inline {
			pol := pol.(map[string]any)
			add([]string{"${" + friendly(id) + "}"}, friendly(id)+" inline "+render(pol["PolicyName"]), pol["PolicyDocument"])
		}
	}
	return byRole
}

// grants flattens a role's Allow statements into "action resource" lines,
// sorted.
func grants(stmts []statement) []string {
	var out []string
	for _, s := range stmts {
		if s.effect != "Allow" {
			continue
		}
		for _, a := range s.actions {
			for _, r := range s.resources {
				out = append(out, a+" "+r)
			}
		}
	}
	sort.Strings(out)
	return out
}

// packageConsts returns the string constants declared in the Go files of
// dir (test files excluded), by name.
func packageConsts(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	consts := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[n.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	return consts
}

// eachStack runs f on the default stack and on the fully configured one,
// as subtests.
func eachStack(t *testing.T, f func(t *testing.T, st *stackTemplate)) {
	for _, tc := range []struct {
		name string
		st   func(*testing.T) *stackTemplate
	}{{"default", defaultStack}, {"configured", fullStack}} {
		t.Run(tc.name, func(t *testing.T) { f(t, tc.st(t)) })
	}
}
