package main

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/shared/server"
)

func budgetsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "budgets SESSION",
		Short: "Show what a session's budgets have spent and hold in their current windows",
		Long: `budgets shows every budget that applies to a session — its project's, its
agent's and its own — with what is spent, what is held for calls in flight, and
the cap, in the current window.`,
		Args: cobra.ExactArgs(1),
	}
	var format string
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	newClient := adminClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		var views []server.BudgetView
		if err := c.call(cmd.Context(), "GET", "/v1/admin/sessions/"+url.PathEscape(args[0])+"/budgets", nil, &views); err != nil {
			return err
		}
		if format == "json" {
			return writeJSON(cmd.OutOrStdout(), views)
		}
		if len(views) == 0 {
			fmt.Fprintln(cmd.OutOrStdout(), "no budget applies to this session")
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BUDGET\tSCOPE\tWINDOW\tSPENT\tHELD\tCAP\tALERTED")
		for _, v := range views {
			spent, held, limit := "$"+trimUSD(v.SpentUSD), "$"+trimUSD(v.HeldUSD), "-"
			if v.CapUSD != "" {
				limit = "$" + trimUSD(v.CapUSD)
			}
			switch {
			case v.CapTokens > 0 && v.CapUSD == "": // a token budget
				spent, held, limit = fmt.Sprintf("%d tokens", v.SpentTokens), fmt.Sprintf("%d tokens", v.HeldTokens), fmt.Sprintf("%d tokens", v.CapTokens)
			case v.CapTokens > 0:
				spent, held, limit = fmt.Sprintf("%s, %d tokens", spent, v.SpentTokens), fmt.Sprintf("%s, %d tokens", held, v.HeldTokens), fmt.Sprintf("%s, %d tokens", limit, v.CapTokens)
			}
			alerted := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(v.Alerted)), ","), "[]")
			fmt.Fprintf(tw, "%s\t%s %s\t%s – %s\t%s\t%s\t%s\t%s\n", v.Budget, v.Scope, v.Key,
				v.WindowStart.Format(time.DateTime), v.WindowEnd.Format(time.DateTime), spent, held, limit, alerted)
		}
		return tw.Flush()
	}
	return cmd
}

// trimUSD shortens a nine-decimal dollar amount to at most six decimals,
// without trailing zeros beyond the cents.
func trimUSD(d string) string {
	whole, frac, _ := strings.Cut(d, ".")
	frac = strings.TrimRight(frac[:min(len(frac), 6)], "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return whole + "." + frac
}
