package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// gitCredentialCommand is git's credential helper for Warden's git remote:
// it answers git's "get" for the Warden endpoint with the session token
// (as the password), and nothing for any other host, so that no other
// credential ever reaches Warden and the token reaches nobody else.
func gitCredentialCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "git-credential get|store|erase",
		Short: "git's credential helper for Warden's git remote",
		Long: `warden git-credential is a git credential helper (git help credentials): for a
request to the Warden endpoint it answers with the session token, which Warden's
git remote (<endpoint>/git/<host>/<org>/<repo>.git) takes as the password. It
answers nothing for any other host. store and erase do nothing.

warden agent setup writes it into the agent's git configuration:

  [credential "<endpoint>"]
    helper = "warden git-credential"`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"get", "store", "erase"},
	}
	newClient := clientFlags(cmd, sessionTokenEnv, "session token", false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if args[0] != "get" {
			return nil
		}
		in, err := readCredentialRequest(cmd.InOrStdin())
		if err != nil {
			return err
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		endpoint, err := url.Parse(c.endpoint)
		if err != nil {
			return fmt.Errorf("the Warden endpoint %q: %w", c.endpoint, err)
		}
		if in["protocol"] != endpoint.Scheme || in["host"] != endpoint.Host {
			return nil // not Warden: git asks its other helpers
		}
		fmt.Fprintf(cmd.OutOrStdout(), "username=warden\npassword=%s\n", c.token)
		return nil
	}
	return cmd
}

// readCredentialRequest reads git's key=value lines, up to a blank line or
// the end, at most 64 KiB.
func readCredentialRequest(r interface{ Read([]byte) (int, error) }) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("git credential input: %q is not key=value", line)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, errors.New("git credential input: unreadable or over 64 KiB")
	}
	return out, nil
}
