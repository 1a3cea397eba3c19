// Command warden is the one binary people run: the local control plane
// (serve, from a later release) and the tools around it (policy, audit,
// approvals, sessions, budgets).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exitError carries an exit status for a failure that has already been
// reported (failed tests, an invalid policy).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run executes the command line and returns the process exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "warden",
		Short:         "Warden is a control plane for AI coding agents",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(policyCommand(), serveCommand(), projectsCommand(), agentsCommand(), sessionsCommand(), approvalsCommand(), budgetsCommand(),
		agentCommand(), hookCommand(), awsCommand(), gitCredentialCommand(), auditCommand())
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "warden: %v\n", err)
		return 2
	}
}
