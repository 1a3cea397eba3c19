package policy

import (
	"fmt"
	"time"
)

// TestFile is a policy test file: requests and the decisions expected for
// them. `warden policy test` runs every *_test.yaml file it finds.
type TestFile struct {
	Policy string     `policy:"policy" doc:"The policy file under test, relative to this file. Default: policy.yaml beside it."`
	Tests  []TestCase `policy:"tests,required" doc:"The test cases."`
}

// TestCase is one request and its expected decision.
type TestCase struct {
	Name    string      `policy:"name,required" doc:"What the case checks, shown when it fails."`
	Request TestRequest `policy:"request,required" doc:"The request to decide."`
	Expect  TestExpect  `policy:"expect,required" doc:"The expected decision."`

	pos Position
}

// TestRequest is a request written in a test file.
type TestRequest struct {
	Project  string            `policy:"project" doc:"The principal's project."`
	Agent    string            `policy:"agent" doc:"The principal's agent."`
	Session  string            `policy:"session" doc:"The session ID."`
	Labels   map[string]string `policy:"labels" doc:"The principal's labels."`
	Action   string            `policy:"action,required" doc:"The action, e.g. git:push."`
	Resource string            `policy:"resource" doc:"The resource. For shell tools, use command instead."`
	Command  string            `policy:"command" doc:"A shell command line, for tool:Bash and other shell tools."`
	Time     time.Time         `policy:"time" doc:"When the request is made (RFC 3339). Conditions on time fail closed without it."`
	Attrs    map[string]any    `policy:"attrs" doc:"Request attributes for conditions."`
}

// TestExpect is an expected decision.
type TestExpect struct {
	Effect string `policy:"effect,required" enum:"allow,deny,approve" doc:"The expected effect."`
	Rule   string `policy:"rule" doc:"The expected deciding rule ID; (default) for the default deny. Absent: not checked."`
}

// DefaultRule is what a test expects as the rule of a default deny.
const DefaultRule = "(default)"

// LoadTests parses a test file.
func LoadTests(file string, data []byte) (*TestFile, error) {
	e := &errs{}
	var tf TestFile
	pos := decodeDoc(file, data, &tf, e)
	if pos == nil {
		return nil, e.err()
	}
	c := &compiler{file: file, pos: pos, errs: e}
	for i, tc := range tf.Tests {
		path := pathOf(pathOf("tests", i), "request")
		if KindOf(tc.Request.Action) == KindUnknown {
			c.errorf(pathOf(path, "action"), CodeBadPattern, "write kind:name, e.g. git:push", "action %q has no kind prefix", tc.Request.Action)
		}
		if tc.Request.Command != "" && tc.Request.Resource != "" {
			c.errorf(pathOf(path, "command"), CodeInvalidValue, "", "give resource or command, not both")
		}
		tf.Tests[i].pos = c.at(pathOf("tests", i))
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return &tf, nil
}

// Request builds the engine request the test request describes. For a
// command it also returns the parse error, if any, alongside a request that
// fails closed (see Commands).
func (r *TestRequest) Request() (*Request, error) {
	req := &Request{
		Principal:  Principal{Project: r.Project, Agent: r.Agent, Session: r.Session, Labels: r.Labels},
		Action:     r.Action,
		Resource:   r.Resource,
		Time:       r.Time,
		Attributes: r.Attrs,
	}
	var err error
	if r.Command != "" {
		req.Resource = r.Command
		req.Commands, err = Commands(r.Command)
	}
	return req, err
}

// ParseRequest parses a request written as YAML or JSON with the fields of
// a test request, for `warden policy explain`. A command that does not parse
// is reported as an error.
func ParseRequest(file string, data []byte) (*Request, error) {
	e := &errs{}
	var tr TestRequest
	decodeDoc(file, data, &tr, e)
	if err := e.err(); err != nil {
		return nil, err
	}
	if KindOf(tr.Action) == KindUnknown {
		return nil, fmt.Errorf("request action %q has no kind prefix (write e.g. git:push)", tr.Action)
	}
	return tr.Request()
}

// TestResult is the outcome of one test case.
type TestResult struct {
	Name string   `json:"name"`
	Pos  Position `json:"-"`
	// Location is Pos as file:line, for reports.
	Location string `json:"location"`
	Pass     bool   `json:"pass"`
	// Got is the decision the policy made.
	Got Decision `json:"-"`
	// Message says what differed, for a failure.
	Message string `json:"message,omitempty"`
	// Effect and Rule are the decision made, for reports.
	Effect string `json:"effect"`
	Rule   string `json:"rule"`
}

// RunTests decides every case of tf with p.
func RunTests(p *Policy, tf *TestFile) []TestResult {
	out := make([]TestResult, 0, len(tf.Tests))
	for _, tc := range tf.Tests {
		res := TestResult{Name: tc.Name, Pos: tc.pos, Location: fmt.Sprintf("%s:%d", tc.pos.File, tc.pos.Line)}
		req, parseErr := tc.Request.Request()
		d := p.Evaluate(req)
		res.Got, res.Effect, res.Rule = d, d.Effect.String(), d.Rule
		gotRule := d.Rule
		if gotRule == "" {
			gotRule = DefaultRule
		}
		res.Pass = d.Effect.String() == tc.Expect.Effect && (tc.Expect.Rule == "" || tc.Expect.Rule == gotRule)
		if !res.Pass {
			res.Message = fmt.Sprintf("expected %s, got %s by %s", describe(tc.Expect.Effect, tc.Expect.Rule), d.Effect, describeRule(d))
			if parseErr != nil {
				res.Message += fmt.Sprintf(" (command did not parse: %v)", parseErr)
			}
		}
		out = append(out, res)
	}
	return out
}

func describe(effect, rule string) string {
	if rule == "" {
		return effect
	}
	return fmt.Sprintf("%s by rule %s", effect, rule)
}

func describeRule(d Decision) string {
	if d.Rule == "" {
		return "the default deny"
	}
	s := fmt.Sprintf("rule %s (%s)", d.Rule, d.Pos)
	if d.Command != "" {
		s += fmt.Sprintf(" for command %q", d.Command)
	}
	return s
}
