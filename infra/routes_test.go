package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"
)

// route is a route the Go code registers: "POST /v1/messages", and the
// name of the mux it is registered on.
type route struct {
	method, path, mux string
}

// codeRoutes reads the routes registered in the Go files of dir (test
// files excluded, file names matching only when given): every
// <mux>.HandleFunc("METHOD /path", …) and <mux>.Handle(…), the pattern a
// string literal, a string constant of the package, or a sum of them.
// Patterns without a method (prefix mounts such as "/v1/admin/") are left
// out.
func codeRoutes(t *testing.T, dir string, only ...string) []route {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	consts := packageConsts(t, dir)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || (len(only) > 0 && !contains(only, filepath.Base(name))) {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
	}
	var eval func(e ast.Expr) (string, bool)
	eval = func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			s, ok := consts[e.Name]
			return s, ok
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				l, ok1 := eval(e.X)
				r, ok2 := eval(e.Y)
				return l + r, ok1 && ok2
			}
		case *ast.ParenExpr:
			return eval(e.X)
		}
		return "", false
	}
	var routes []route
	for _, f := range parsed {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			recv, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			pattern, ok := eval(call.Args[0])
			if !ok {
				t.Errorf("%s: a route pattern this test cannot read: teach codeRoutes", fset.Position(call.Pos()))
				return true
			}
			method, path, hasMethod := strings.Cut(pattern, " ")
			if hasMethod {
				routes = append(routes, route{method: method, path: path, mux: recv.Name})
			}
			return true
		})
	}
	if len(routes) == 0 {
		t.Fatalf("no routes found in %s", dir)
	}
	return routes
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

var wildcard = regexp.MustCompile(`\{[A-Za-z]+(\.\.\.)?\}`)

// concrete turns a route pattern into a path a client would send.
func concrete(pattern string) string {
	return wildcard.ReplaceAllStringFunc(pattern, func(w string) string {
		if strings.HasSuffix(w, "...}") {
			return "records/2026/11/26/1-10.jsonl.gz"
		}
		if w == "{modelId}" {
			return "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
		}
		return "x1"
	})
}

// apiMethod is the API Gateway method that serves a request.
type apiMethod struct {
	id, resourcePath string
	auth, target     string // target: the function's friendly logical ID
	streamed         bool
	timeoutMillis    float64
}

// gateway models the REST API's routing: a literal path part beats a
// {param} one, which beats {proxy+} (which takes the rest of the path).
// A path that ends on a resource without the method is not routed to an
// ancestor's proxy: API Gateway refuses it.
type gateway struct {
	children map[string][]string // resource -> child resources
	part     map[string]string   // resource -> path part
	methods  map[string]map[string]apiMethod
	root     string
}

func newGateway(t *testing.T, st *stackTemplate) *gateway {
	t.Helper()
	g := &gateway{children: map[string][]string{}, part: map[string]string{}, methods: map[string]map[string]apiMethod{}}
	apis := st.resources("AWS::ApiGateway::RestApi")
	if len(apis) != 1 {
		t.Fatalf("%d REST APIs, want 1", len(apis))
	}
	for id := range apis {
		g.root = "${" + friendly(id) + ".RootResourceId}"
	}
	for id, r := range st.resources("AWS::ApiGateway::Resource") {
		p := r["Properties"].(map[string]any)
		self := "${" + friendly(id) + "}"
		g.part[self] = p["PathPart"].(string)
		parent := render(p["ParentId"])
		g.children[parent] = append(g.children[parent], self)
	}
	for id, r := range st.resources("AWS::ApiGateway::Method") {
		p := r["Properties"].(map[string]any)
		res := render(p["ResourceId"])
		in, _ := p["Integration"].(map[string]any)
		m := apiMethod{id: id, resourcePath: g.path(res), auth: render(p["AuthorizationType"])}
		if in != nil {
			uri := render(in["Uri"])
			if m2 := regexp.MustCompile(`functions/\$\{([A-Za-z0-9]+)\.Arn\}`).FindStringSubmatch(uri); m2 != nil {
				m.target = m2[1]
			}
			m.streamed = in["ResponseTransferMode"] == "STREAM" && strings.HasSuffix(uri, "/response-streaming-invocations")
			m.timeoutMillis, _ = in["TimeoutInMillis"].(float64)
		}
		if g.methods[res] == nil {
			g.methods[res] = map[string]apiMethod{}
		}
		g.methods[res][render(p["HttpMethod"])] = m
	}
	return g
}

// path is a resource's path, "/v1/admin/{proxy+}".
func (g *gateway) path(res string) string {
	if res == g.root {
		return "/"
	}
	for parent, kids := range g.children {
		if contains(kids, res) {
			p := g.path(parent)
			return strings.TrimSuffix(p, "/") + "/" + g.part[res]
		}
	}
	return "?" + res
}

// route returns the method that serves method and path, false if none.
func (g *gateway) route(method, path string) (apiMethod, bool) {
	cur := g.root
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i < len(segs); i++ {
		var literal, param, proxy string
		for _, kid := range g.children[cur] {
			switch part := g.part[kid]; {
			case part == segs[i]:
				literal = kid
			case strings.HasSuffix(part, "+}"):
				proxy = kid
			case strings.HasPrefix(part, "{"):
				param = kid
			}
		}
		switch {
		case literal != "":
			cur = literal
		case param != "":
			cur = param
		case proxy != "":
			cur = proxy
			i = len(segs)
		default:
			return apiMethod{}, false
		}
	}
	ms := g.methods[cur]
	if m, ok := ms[method]; ok {
		return m, true
	}
	m, ok := ms["ANY"]
	return m, ok
}

// TestRoutes checks that every route the Go code registers is served by
// the right function with the right authorization: the LLM gateway's
// (shared/llm) by llm, streamed, with no API Gateway authorizer (Warden
// tokens are checked by the function); the admin API's by api behind IAM;
// Slack's interactivity route by slack with no authorizer (Slack's
// signature is checked by the function); the rest (hooks, login,
// sessions, health) by api with no authorizer.
func TestRoutes(t *testing.T) {
	st := defaultStack(t)
	g := newGateway(t, st)

	llmCode := codeRoutes(t, filepath.Join("..", "shared", "llm"))
	serverCode := codeRoutes(t, filepath.Join("..", "shared", "server"), "server.go")

	// The stack's list of LLM routes is exactly what shared/llm registers.
	var got, want []string
	for _, r := range llmRoutes {
		got = append(got, r.method+" "+r.path)
	}
	for _, r := range llmCode {
		want = append(want, r.method+" "+r.path)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("llmRoutes differ from the routes shared/llm registers:\n got %q\nwant %q", got, want)
	}

	check := func(r route, target, auth string, streamed bool) {
		t.Helper()
		path := concrete(r.path)
		m, ok := g.route(r.method, path)
		if !ok {
			t.Errorf("%s %s (registered as %s on %s): API Gateway does not route it", r.method, path, r.path, r.mux)
			return
		}
		if m.target != target || m.auth != auth || m.streamed != streamed {
			t.Errorf("%s %s: served by %s %s (target %s, auth %s, streamed %v); want target %s, auth %s, streamed %v",
				r.method, path, m.resourcePath, m.id, m.target, m.auth, m.streamed, target, auth, streamed)
		}
		if streamed && m.timeoutMillis != 15*60*1000 {
			t.Errorf("%s %s: integration timeout %v ms, want 15 minutes for a streamed answer", r.method, path, m.timeoutMillis)
		}
	}
	for _, r := range llmCode {
		check(r, "LlmFunction", "NONE", true)
	}
	var admin, slack int
	for _, r := range serverCode {
		switch {
		case r.mux == "admin":
			admin++
			check(r, "ApiFunction", "AWS_IAM", false)
		case r.mux == "mux" && r.path == SlackInteractivityPath:
			slack++
			check(r, "SlackFunction", "NONE", false)
		case r.mux == "mux" && r.path == GitStatusPath:
			// The git remote's status, from the function that serves it.
			check(r, "LlmFunction", "NONE", true)
		case r.mux == "mux":
			check(r, "ApiFunction", "NONE", false)
		default:
			t.Errorf("route %s %s on a mux named %q: classify it in TestRoutes", r.method, r.path, r.mux)
		}
	}
	if admin == 0 {
		t.Error("no admin routes found in shared/server/server.go")
	}
	// The stack's Slack resource is where the server takes Slack's
	// requests: were the route renamed, the resource would serve nothing.
	if slack != 1 {
		t.Errorf("shared/server/server.go registers %s %d times, want once (SlackInteractivityPath)", SlackInteractivityPath, slack)
	}

	// Only the admin resource has IAM authorization, and it covers the
	// whole admin tree, whatever the method.
	for _, ms := range g.methods {
		for verb, m := range ms {
			if (m.auth == "AWS_IAM") != strings.HasPrefix(m.resourcePath, "/v1/admin/") {
				t.Errorf("%s %s: authorization %s", verb, m.resourcePath, m.auth)
			}
			if m.auth != "AWS_IAM" && m.auth != "NONE" {
				t.Errorf("%s %s: unexpected authorization %s", verb, m.resourcePath, m.auth)
			}
			if m.target == "LlmFunction" && !m.streamed {
				t.Errorf("%s %s: llm route is not streamed", verb, m.resourcePath)
			}
		}
	}
	for _, path := range []string{"/v1/admin/anything", "/v1/admin/a/b/c"} {
		for _, verb := range []string{"GET", "POST", "DELETE", "PUT"} {
			if m, ok := g.route(verb, path); !ok || m.auth != "AWS_IAM" {
				t.Errorf("%s %s: routed %v with auth %q, want AWS_IAM", verb, path, ok, m.auth)
			}
		}
	}
	// The git remote streams from the llm function, every method, at the
	// path shared/gitproxy mounts it.
	if gitproxyPrefix := packageConsts(t, filepath.Join("..", "shared", "gitproxy"))["PathPrefix"]; gitproxyPrefix != GitPathPrefix {
		t.Errorf("shared/gitproxy.PathPrefix is %q, the stack routes %q", gitproxyPrefix, GitPathPrefix)
	}
	// git's requests reach the function as bytes: the API passes exactly
	// the content types of git's requests as binary.
	consts := packageConsts(t, filepath.Join("..", "shared", "gitproxy"))
	wantTypes := []any{consts["UploadPackRequest"], consts["ReceivePackRequest"]}
	apis := st.resources("AWS::ApiGateway::RestApi")
	if len(apis) != 1 {
		t.Fatalf("%d REST APIs", len(apis))
	}
	var restAPI map[string]any
	for _, r := range apis {
		restAPI = r["Properties"].(map[string]any)
	}
	if got := restAPI["BinaryMediaTypes"]; !reflect.DeepEqual(got, wantTypes) || len(GitBinaryMediaTypes) != 2 {
		t.Errorf("the API's binary media types are %v, want git's requests' %v", got, wantTypes)
	}
	if m, ok := g.route("POST", GitStatusPath); ok && m.target == "LlmFunction" {
		t.Errorf("POST %s reaches the llm function", GitStatusPath)
	}
	for _, verb := range []string{"GET", "POST"} {
		for _, path := range []string{"/git/github.com/acme/web.git/info/refs", "/git/github.com/acme/web.git/git-receive-pack"} {
			if m, ok := g.route(verb, path); !ok || m.target != "LlmFunction" || m.auth != "NONE" || !m.streamed {
				t.Errorf("%s %s: routed %v to %s (auth %s, streamed %v), want the llm function, streamed", verb, path, ok, m.target, m.auth, m.streamed)
			}
		}
	}
	// /v1/admin itself is not handed to the unauthenticated proxy.
	if m, ok := g.route("GET", "/v1/admin"); ok {
		t.Errorf("GET /v1/admin is routed to %s (%s), want no route", m.resourcePath, m.auth)
	}
}

// TestSlackInteractivity: Slack's interactivity requests reach the slack
// function through a Lambda proxy integration, with no authorization at
// API Gateway (Slack signs its requests; the function checks the
// signature), at a literal resource that takes precedence over
// /v1/{proxy+}; POST only, and no other method reaches the slack function.
func TestSlackInteractivity(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   func(*testing.T) *stackTemplate
	}{{"default", defaultStack}, {"slack", fullStack}} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st(t)
			g := newGateway(t, st)
			fn := st.functionID(t, "slack")

			m, ok := g.route("POST", SlackInteractivityPath)
			if !ok {
				t.Fatalf("POST %s: API Gateway does not route it", SlackInteractivityPath)
			}
			if m.resourcePath != SlackInteractivityPath {
				t.Fatalf("POST %s: served by %s, want its own resource", SlackInteractivityPath, m.resourcePath)
			}
			// Proxied as is, buffered (Slack wants its answer within 3 s).
			must(t, "method", func() {
				st.only(t, m.id).HasResourceProperties(jsii.String("AWS::ApiGateway::Method"), match(&map[string]any{
					"HttpMethod":        "POST",
					"AuthorizationType": "NONE",
					"AuthorizerId":      absent(),
					"ApiKeyRequired":    absent(),
					"Integration": match(&map[string]any{
						"Type":                  "AWS_PROXY",
						"IntegrationHttpMethod": "POST",
						"ResponseTransferMode":  absent(),
					}),
				}))
			})
			if m.target != friendly(fn) || m.streamed {
				t.Errorf("POST %s: integration target %q (streamed %v), want %s, buffered", SlackInteractivityPath, m.target, m.streamed, friendly(fn))
			}

			// Nothing else reaches the slack function, and the resource has
			// no other method: a GET is refused, not passed to api.
			for _, ms := range g.methods {
				for verb, m := range ms {
					if (m.target == friendly(fn)) != (verb == "POST" && m.resourcePath == SlackInteractivityPath) {
						t.Errorf("%s %s: served by %s", verb, m.resourcePath, m.target)
					}
				}
			}
			if m, ok := g.route("GET", SlackInteractivityPath); ok {
				t.Errorf("GET %s is routed to %s %s, want no route", SlackInteractivityPath, m.resourcePath, m.target)
			}

			// API Gateway may invoke the slack function for this method only.
			var sources []string
			for _, p := range st.resources("AWS::Lambda::Permission") {
				props := p["Properties"].(map[string]any)
				if render(props["FunctionName"]) == "${"+friendly(fn)+".Arn}" {
					sources = append(sources, render(props["SourceArn"]))
				}
			}
			want := "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/${ApiDeploymentStage" +
				st.cfg.Stage + "}/POST" + SlackInteractivityPath
			if len(sources) != 1 || sources[0] != want {
				t.Errorf("permissions to invoke the slack function from %q, want only %q", sources, want)
			}
		})
	}
}
