package main

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/server"
)

func approvalsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "approvals", Short: "List, show and decide the requests waiting for a human"}

	list := &cobra.Command{Use: "list", Short: "List approvals, newest first", Args: cobra.NoArgs}
	var state string
	var limit int
	list.Flags().StringVar(&state, "state", "pending", "pending, approved, denied, expired, cancelled, or all")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many")
	newList := adminClient(list)
	list.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newList()
		if err != nil {
			return err
		}
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if state != "all" {
			q.Set("state", state)
		}
		var out []approval.Approval
		if err := c.call(cmd.Context(), "GET", "/v1/admin/approvals?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		now := time.Now()
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "APPROVAL\tSTATE\tPROJECT\tAGENT\tACTION\tRESOURCE\tRULE\tREQUESTED\tEXPIRES")
		for _, a := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Describe(now), a.Project, a.Agent, a.Action,
				truncate(a.Resource, 60), a.Rule, a.Created.Format(time.RFC3339), a.Expires.Format(time.RFC3339))
		}
		return tw.Flush()
	}

	show := &cobra.Command{Use: "show ID", Short: "Show one approval: the request, who may decide, the outcome", Args: cobra.ExactArgs(1)}
	newShow := adminClient(show)
	show.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newShow()
		if err != nil {
			return err
		}
		var a approval.Approval
		if err := c.call(cmd.Context(), "GET", "/v1/admin/approvals/"+url.PathEscape(args[0]), nil, &a); err != nil {
			return err
		}
		return writeJSON(cmd.OutOrStdout(), a)
	}

	decide := func(approve bool) *cobra.Command {
		verb := map[bool]string{true: "approve", false: "deny"}[approve]
		d := &cobra.Command{Use: verb + " ID", Args: cobra.ExactArgs(1),
			Short: map[bool]string{true: "Let the request through once (or --for a while)", false: "Refuse the request"}[approve]}
		var note, forDur string
		d.Flags().StringVar(&note, "note", "", "a note for the audit trail and the agent")
		if approve {
			d.Flags().StringVar(&forDur, "for", "", "let every identical request through for this long (e.g. 1h; at most the approver group's ttl)")
		}
		newClient := adminClient(d)
		d.RunE = func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			var a approval.Approval
			err = c.call(cmd.Context(), "POST", "/v1/admin/approvals/"+url.PathEscape(args[0])+"/"+verb,
				server.DecideRequest{For: forDur, Note: note}, &a)
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("%s %s by %s", a.ID, a.State, a.DecidedBy)
			if a.State == approval.Approved {
				msg += map[bool]string{true: " until " + a.GrantUntil.Format(time.RFC3339), false: ", once, until " + a.GrantUntil.Format(time.RFC3339)}[a.Reusable]
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		}
		return d
	}

	cancel := &cobra.Command{Use: "cancel ID", Short: "Withdraw a pending approval", Args: cobra.ExactArgs(1)}
	var reason string
	cancel.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail; required)")
	newCancel := adminClient(cancel)
	cancel.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newCancel()
		if err != nil {
			return err
		}
		if strings.TrimSpace(reason) == "" {
			return fmt.Errorf("give a reason with --reason")
		}
		if err := c.call(cmd.Context(), "POST", "/v1/admin/approvals/"+url.PathEscape(args[0])+"/cancel", map[string]string{"reason": reason}, nil); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s cancelled\n", args[0])
		return nil
	}
	cmd.AddCommand(list, show, decide(true), decide(false), cancel)
	return cmd
}
