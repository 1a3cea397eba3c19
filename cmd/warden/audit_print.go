package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/wardenhq/warden/shared/audit"
)

// printRecord writes one audit record as a line of text or JSON.
func printRecord(w io.Writer, r audit.Record, format string) error {
	if format == "json" {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	who := r.Project
	if r.Agent != "" {
		who += "/" + r.Agent
	}
	if r.Session != "" {
		who += " " + r.Session
	}
	if r.Actor != "" {
		who = strings.TrimSpace(who + " by " + r.Actor)
	}
	parts := []string{fmt.Sprintf("%6d", r.Seq), r.Time.Format("2006-01-02T15:04:05.000Z"), string(r.Code), who}
	if r.Action != "" {
		parts = append(parts, r.Action)
	}
	if r.Resource != "" {
		parts = append(parts, fmt.Sprintf("%q", r.Resource))
	}
	if r.Rule != "" {
		parts = append(parts, "rule="+r.Rule)
	}
	if r.Status != "" {
		parts = append(parts, "status="+r.Status, fmt.Sprintf("%dms", r.DurationMS))
	}
	if r.Reason != "" && r.Code != audit.DecisionAllow {
		parts = append(parts, "— "+r.Reason)
	}
	_, err := fmt.Fprintln(w, strings.Join(parts, "  "))
	return err
}
