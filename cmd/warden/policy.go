package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/policy"
)

func policyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Validate, test and explain policies",
	}
	cmd.AddCommand(validateCommand(), testCommand(), explainCommand(), schemaCommand(), pushCommand())
	return cmd
}

// readPolicyFile reads a file, refusing one larger than the policy limit
// before reading it whole.
func readPolicyFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, policy.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// loadPolicy reads and compiles a policy file.
func loadPolicy(name string) (*policy.Policy, error) {
	data, err := readPolicyFile(name)
	if err != nil {
		return nil, err
	}
	return policy.Load(name, data)
}

// jsonError is a policy error as --format json reports it.
type jsonError struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func toJSONErrors(err error) []jsonError {
	var list policy.ErrorList
	if !errors.As(err, &list) {
		return []jsonError{{Code: "io", Message: err.Error()}}
	}
	out := make([]jsonError, len(list))
	for i, e := range list {
		out[i] = jsonError{e.Pos.File, e.Pos.Line, e.Pos.Column, string(e.Code), e.Msg, e.Hint}
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func validateCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check policy files; print every problem with its file:line:column",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			var all []jsonError
			failed := false
			for _, name := range args {
				p, err := loadPolicy(name)
				if err != nil {
					failed = true
					if format == "json" {
						all = append(all, toJSONErrors(err)...)
					} else {
						fmt.Fprintln(cmd.ErrOrStderr(), err)
					}
					continue
				}
				if format != "json" {
					fmt.Fprintf(out, "%s: ok (%d rules, version %s)\n", name, p.RuleCount(), p.Version[:12])
				}
			}
			if format == "json" {
				if all == nil {
					all = []jsonError{}
				}
				if err := writeJSON(out, all); err != nil {
					return err
				}
			}
			if failed {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func testCommand() *cobra.Command {
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [PATH]",
		Short: "Run policy tests (*_test.yaml) in the manner of opa test",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := "."
			if len(args) == 1 {
				root = args[0]
			}
			files, err := findTestFiles(root)
			if err != nil {
				return err
			}
			if len(files) == 0 {
				return fmt.Errorf("no test files (*_test.yaml) under %s", root)
			}
			var results []policy.TestResult
			var loadErrs []error
			policies := map[string]*policy.Policy{}
			for _, f := range files {
				res, err := runTestFile(f, policies)
				if err != nil {
					loadErrs = append(loadErrs, err)
					continue
				}
				results = append(results, res...)
			}
			return reportTests(cmd, format, verbose, results, loadErrs)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list passing tests too")
	return cmd
}

// findTestFiles returns root if it is a file, or every *_test.yaml and
// *_test.yml below it.
func findTestFiles(root string) ([]string, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{root}, nil
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, "_test.yaml") || strings.HasSuffix(path, "_test.yml")) {
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// runTestFile loads a test file and the policy it names, and runs it.
func runTestFile(name string, policies map[string]*policy.Policy) ([]policy.TestResult, error) {
	data, err := readPolicyFile(name)
	if err != nil {
		return nil, err
	}
	tf, err := policy.LoadTests(name, data)
	if err != nil {
		return nil, err
	}
	target := tf.Policy
	if target == "" {
		target = "policy.yaml"
	}
	target = filepath.Join(filepath.Dir(name), target)
	p, ok := policies[target]
	if !ok {
		if p, err = loadPolicy(target); err != nil {
			return nil, err
		}
		policies[target] = p
	}
	return policy.RunTests(p, tf), nil
}

func reportTests(cmd *cobra.Command, format string, verbose bool, results []policy.TestResult, loadErrs []error) error {
	out := cmd.OutOrStdout()
	pass := 0
	for _, r := range results {
		if r.Pass {
			pass++
		}
	}
	failed := pass != len(results) || len(loadErrs) > 0
	if format == "json" {
		report := struct {
			Results []policy.TestResult `json:"results"`
			Errors  []jsonError         `json:"errors"`
			Pass    int                 `json:"pass"`
			Total   int                 `json:"total"`
		}{results, []jsonError{}, pass, len(results)}
		if report.Results == nil {
			report.Results = []policy.TestResult{}
		}
		for _, e := range loadErrs {
			report.Errors = append(report.Errors, toJSONErrors(e)...)
		}
		if err := writeJSON(out, report); err != nil {
			return err
		}
	} else {
		for _, e := range loadErrs {
			fmt.Fprintln(out, e)
		}
		for _, r := range results {
			switch {
			case !r.Pass:
				fmt.Fprintf(out, "%s: FAIL: %s: %s\n", r.Location, r.Name, r.Message)
			case verbose:
				fmt.Fprintf(out, "%s: PASS: %s\n", r.Location, r.Name)
			}
		}
		if len(results) > 0 || len(loadErrs) == 0 {
			fmt.Fprintln(out, strings.Repeat("-", 80))
		}
		fmt.Fprintf(out, "PASS: %d/%d\n", pass, len(results))
		if pass != len(results) {
			fmt.Fprintf(out, "FAIL: %d/%d\n", len(results)-pass, len(results))
		}
		if len(loadErrs) > 0 {
			fmt.Fprintf(out, "ERROR: %d file(s) could not be loaded\n", len(loadErrs))
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}

func explainCommand() *cobra.Command {
	var format, reqText string
	var flags policy.TestRequest
	var timeText string
	var all bool
	cmd := &cobra.Command{
		Use:   "explain FILE --request REQUEST",
		Short: "Show which rules match a request, which one decides, and why",
		Long: `Explain decides one request and shows every rule's verdict.

The request is YAML or JSON with the fields of a test request (project, agent,
session, labels, action, resource, command, time, attrs), given inline, as
@FILE, or through the flags --project, --agent, --action, --resource,
--command and --time.`,
		Example: `  warden policy explain policy.yaml --request '{project: project-a, agent: claude, action: git:push, resource: "github.com/acme/app:refs/heads/main"}'
  warden policy explain policy.yaml --action tool:Bash --project project-a --command 'cd x && sudo rm -rf /'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPolicy(args[0])
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError{1}
			}
			req, err := explainRequest(reqText, flags, timeText)
			if err != nil {
				return err
			}
			d, traces := p.Explain(req)
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), explainJSON(d, traces))
			}
			printExplain(cmd.OutOrStdout(), d, traces, all)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&reqText, "request", "", "the request, as YAML/JSON or @FILE")
	f.StringVar(&flags.Project, "project", "", "the principal's project")
	f.StringVar(&flags.Agent, "agent", "", "the principal's agent")
	f.StringVar(&flags.Action, "action", "", "the action, e.g. git:push")
	f.StringVar(&flags.Resource, "resource", "", "the resource")
	f.StringVar(&flags.Command, "command", "", "a shell command line (for tool:Bash)")
	f.StringVar(&timeText, "time", "", "the request time, RFC 3339")
	f.StringVar(&format, "format", "text", "output format: text or json")
	f.BoolVar(&all, "all", false, "also list the rules for other actions")
	return cmd
}

// explainRequest builds the request from --request or the flags.
func explainRequest(text string, flags policy.TestRequest, timeText string) (*policy.Request, error) {
	if text != "" {
		name := "--request"
		if file, ok := strings.CutPrefix(text, "@"); ok {
			data, err := readPolicyFile(file)
			if err != nil {
				return nil, err
			}
			name, text = file, string(data)
		}
		return policy.ParseRequest(name, []byte(text))
	}
	if flags.Action == "" {
		return nil, errors.New("give the request with --request, or at least --action")
	}
	if timeText != "" {
		t, err := time.Parse(time.RFC3339, timeText)
		if err != nil {
			return nil, fmt.Errorf("--time %q is not an RFC 3339 time", timeText)
		}
		flags.Time = t
	}
	return flags.Request()
}

func explainJSON(d policy.Decision, traces []policy.RuleTrace) any {
	type rule struct {
		Rule     string `json:"rule"`
		Effect   string `json:"effect"`
		Location string `json:"location"`
		Matched  bool   `json:"matched"`
		Why      string `json:"why,omitempty"`
		CondErr  string `json:"condition_error,omitempty"`
		Command  string `json:"command,omitempty"`
	}
	out := struct {
		Effect   string `json:"effect"`
		Rule     string `json:"rule"`
		Location string `json:"location,omitempty"`
		Reason   string `json:"reason"`
		Command  string `json:"command,omitempty"`
		Rules    []rule `json:"rules"`
	}{Effect: d.Effect.String(), Rule: d.Rule, Reason: d.Reason, Command: d.Command, Rules: []rule{}}
	if d.Rule != "" {
		out.Location = d.Pos.String()
	}
	for _, t := range traces {
		out.Rules = append(out.Rules, rule{t.Rule, t.Effect.String(), t.Pos.String(), t.Matched, t.Why, t.CondErr, t.Command})
	}
	return out
}

func printExplain(w io.Writer, d policy.Decision, traces []policy.RuleTrace, all bool) {
	fmt.Fprintf(w, "decision: %s\n", d.Effect)
	if d.Rule != "" {
		fmt.Fprintf(w, "rule:     %s (%s)\n", d.Rule, d.Pos)
	} else {
		fmt.Fprintf(w, "rule:     none (deny by default)\n")
	}
	fmt.Fprintf(w, "reason:   %s\n", d.Reason)
	if d.Command != "" {
		fmt.Fprintf(w, "command:  %s\n", d.Command)
	}
	if len(traces) == 0 {
		return
	}
	fmt.Fprintln(w, "\nrules:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	lastCmd := "\x00"
	hidden := 0
	for _, t := range traces {
		if t.OtherAction && !all {
			hidden++
			continue
		}
		if t.Command != lastCmd && t.Command != "" {
			fmt.Fprintf(tw, "  command: %s\n", t.Command)
		}
		lastCmd = t.Command
		mark, why := "-", t.Why
		if t.Matched {
			mark, why = "+", "matches"
			if t.CondErr != "" {
				why = "matches (condition failed, fail closed: " + t.CondErr + ")"
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", mark, t.Effect, t.Rule, t.Pos, why)
	}
	tw.Flush()
	if hidden > 0 {
		fmt.Fprintf(w, "  (%d verdicts of rules for other actions not shown; --all shows them)\n", hidden)
	}
}

func schemaCommand() *cobra.Command {
	var tests bool
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of policy files (or, with --tests, of test files)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			gen := policy.Schema
			if tests {
				gen = policy.TestSchema
			}
			s, err := gen()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", s)
			return err
		},
	}
	cmd.Flags().BoolVar(&tests, "tests", false, "print the schema of policy test files")
	return cmd
}
