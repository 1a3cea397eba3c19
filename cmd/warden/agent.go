package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/hooks"
	"github.com/wardenhq/warden/shared/server"
)

const sessionTokenEnv = "WARDEN_TOKEN"

func agentCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Attach agents: log in, write their configuration"}
	cmd.AddCommand(loginCommand(), setupCommand())
	return cmd
}

// login exchanges an enrollment key for a session.
func login(ctx context.Context, c *apiClient, enrollKey, agent string, labels map[string]string, ttl string) (server.SessionView, error) {
	var s server.SessionView
	err := c.call(ctx, "POST", "/v1/agent/login", server.LoginRequest{EnrollKey: enrollKey, Agent: agent, Labels: labels, TTL: ttl}, &s)
	return s, err
}

func loginCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "login", Short: "Exchange a project's enrollment key for an agent session", Args: cobra.NoArgs}
	var enrollKey, agent, ttl, format string
	var labels map[string]string
	cmd.Flags().StringVar(&enrollKey, "enroll-key", "", "the project's enrollment key (default $WARDEN_ENROLL_KEY)")
	cmd.Flags().StringVar(&agent, "agent", "", "the agent's name within the project (required)")
	cmd.Flags().StringToStringVar(&labels, "label", nil, "session labels, k=v (repeatable)")
	cmd.Flags().StringVar(&ttl, "ttl", "", "session lifetime, e.g. 12h (default 12h)")
	cmd.Flags().StringVar(&format, "format", "env", "output: env (export lines) or json")
	newClient := clientFlags(cmd, "", "", false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if enrollKey == "" {
			enrollKey = os.Getenv("WARDEN_ENROLL_KEY")
		}
		if enrollKey == "" || agent == "" {
			return errors.New("give --enroll-key (or $WARDEN_ENROLL_KEY) and --agent")
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		s, err := login(cmd.Context(), c, enrollKey, agent, labels, ttl)
		if err != nil {
			return err
		}
		if format == "json" {
			return writeJSON(cmd.OutOrStdout(), s)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "# session %s for %s/%s, expires %s\nexport WARDEN_ENDPOINT=%s\nexport %s=%s\n",
			s.ID, s.Project, s.Agent, s.ExpiresAt.Format(time.RFC3339), c.endpoint, sessionTokenEnv, s.Token)
		return nil
	}
	return cmd
}

// hookCommand is the command hook for clients without http hooks (Codex)
// and a fallback for Claude Code. It never lets a tool run by accident:
// every failure exits 2, which both clients treat as "block".
func hookCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hook",
		Short: "Decide a tool call: reads hook JSON on stdin, exits 0 to allow, 2 to block",
		Long: `warden hook is a PreToolUse / PostToolUse command hook. It sends the hook input
to Warden and answers the client: exit 0 lets the tool run; exit 2 blocks it,
with the reason on stderr. Any failure — Warden down, a timeout, a bad answer,
bad input — exits 2, so the tool does not run.`,
		Args: cobra.NoArgs,
	}
	var timeout, approvalWait time.Duration
	cmd.Flags().DurationVar(&timeout, "timeout", 25*time.Second, "how long to wait for Warden, a human's approval included")
	cmd.Flags().DurationVar(&approvalWait, "approval-wait", defaultApprovalWait, "how long to wait for a human to decide a request that needs approval, within --timeout (0: not at all)")
	newClient := clientFlags(cmd, sessionTokenEnv, "session token", false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		code, msg := runHook(cmd.Context(), cmd.InOrStdin(), newClient, timeout, approvalWait)
		if msg != "" {
			fmt.Fprintln(cmd.ErrOrStderr(), msg)
		}
		if code != 0 {
			return exitError{code}
		}
		return nil
	}
	return cmd
}

// defaultApprovalWait is how long `warden hook` waits for an approval: the
// most of the client's 30 s hook timeout that leaves time to ask again.
const defaultApprovalWait = 23 * time.Second

// runHook returns the exit status and the message for stderr.
func runHook(ctx context.Context, stdin io.Reader, newClient func() (*apiClient, error), timeout, approvalWait time.Duration) (int, string) {
	block := func(format string, args ...any) (int, string) {
		return 2, "Warden blocked this tool call: " + fmt.Sprintf(format, args...)
	}
	data, err := io.ReadAll(io.LimitReader(stdin, hooks.MaxInputBytes+1))
	if err != nil {
		return block("cannot read the hook input: %v", err)
	}
	in, err := hooks.Decode(data)
	if err != nil {
		return block("%v", err)
	}
	c, err := newClient()
	if err != nil {
		return block("%v", err)
	}
	path := "/v1/hooks/pre-tool-use"
	if in.HookEventName == hooks.PostToolUse {
		path = "/v1/hooks/post-tool-use"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, out, err := postHook(ctx, c, path, data)
	if err != nil {
		return block("%v", err)
	}
	if in.HookEventName == hooks.PostToolUse {
		if resp.StatusCode != http.StatusOK {
			// The tool has run; a lost outcome record must be visible.
			return 1, "Warden did not record the tool's outcome: " + out.Error
		}
		return 0, ""
	}
	// A request that waits on an approval: wait for a human within the
	// time left, then ask again, which an approval lets through once.
	if id := resp.Header.Get(hooks.ApprovalHeader); id != "" && approvalWait > 0 {
		pending := reasonOf(out)
		wctx, wcancel := context.WithTimeout(ctx, approvalWait+time.Second)
		st, err := waitApproval(wctx, c, id)
		wcancel()
		switch {
		case err != nil || st.State == approval.Pending:
			return 2, pending
		case st.State != approval.Approved:
			return 2, fmt.Sprintf("Warden: approval %s %s", id, st.Status)
		}
		if resp, out, err = postHook(ctx, c, path, data); err != nil {
			return block("%v", err)
		}
	}
	d := out.HookSpecificOutput
	if resp.StatusCode == http.StatusOK && d != nil && d.PermissionDecision == "allow" {
		return 0, ""
	}
	if r := reasonOf(out); r != "" {
		return 2, r
	}
	return block("Warden answered HTTP %d: %s", resp.StatusCode, out.Error)
}

// postHook sends the hook input and reads Warden's answer.
func postHook(ctx context.Context, c *apiClient, path string, data []byte) (*http.Response, hooks.Output, error) {
	var out hooks.Output
	req, err := http.NewRequestWithContext(ctx, "POST", c.endpoint+path, bytes.NewReader(data))
	if err != nil {
		return nil, out, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, out, fmt.Errorf("Warden at %s is unreachable: %v", c.endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, out, fmt.Errorf("reading Warden's answer: %v", err)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, out, fmt.Errorf("Warden answered HTTP %d without a decision", resp.StatusCode)
	}
	return resp, out, nil
}

func reasonOf(out hooks.Output) string {
	if d := out.HookSpecificOutput; d != nil {
		return strings.TrimSpace(d.PermissionDecisionReason)
	}
	return ""
}

// waitApproval long-polls the approval until it is decided or ctx is
// nearly over (a second is kept to ask again).
func waitApproval(ctx context.Context, c *apiClient, id string) (server.ApprovalStatus, error) {
	var st server.ApprovalStatus
	for {
		wait := server.MaxApprovalWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)-time.Second)
		}
		if wait <= 0 {
			return st, nil
		}
		if err := c.call(ctx, "GET", "/v1/approvals/"+url.PathEscape(id)+"?wait="+wait.Round(time.Millisecond).String(), nil, &st); err != nil {
			return st, err
		}
		if st.State != approval.Pending {
			return st, nil
		}
	}
}
