package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/server"
)

const adminTokenEnv = "WARDEN_ADMIN_TOKEN"

func adminClient(cmd *cobra.Command) func() (*apiClient, error) {
	return clientFlags(cmd, adminTokenEnv, "admin token", true)
}

func projectsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "projects", Short: "Create, list, freeze and unfreeze projects"}

	create := &cobra.Command{Use: "create NAME", Short: "Create a project and print its enrollment key", Args: cobra.ExactArgs(1)}
	newCreate := adminClient(create)
	create.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newCreate()
		if err != nil {
			return err
		}
		var out struct {
			Name      string `json:"name"`
			EnrollKey string `json:"enroll_key"`
		}
		if err := c.call(cmd.Context(), "POST", "/v1/admin/projects", map[string]string{"name": args[0]}, &out); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "project %s created\nenrollment key (shown once): %s\n\nattach an agent:\n  warden agent setup claude --endpoint %s --enroll-key %s --agent claude\n",
			out.Name, out.EnrollKey, c.endpoint, out.EnrollKey)
		return nil
	}

	list := &cobra.Command{Use: "list", Short: "List projects", Args: cobra.NoArgs}
	newList := adminClient(list)
	list.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newList()
		if err != nil {
			return err
		}
		var out []server.ProjectView
		if err := c.call(cmd.Context(), "GET", "/v1/admin/projects", nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECT\tSTATE\tCREATED\tREASON")
		for _, p := range out {
			reason := p.FrozenReason
			if reason != "" {
				reason += " (" + p.FrozenBy + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.State, p.CreatedAt.Format(time.RFC3339), reason)
		}
		return tw.Flush()
	}

	cmd.AddCommand(create, list, freezeCommand(true), freezeCommand(false))
	return cmd
}

func freezeCommand(freeze bool) *cobra.Command {
	verb := map[bool]string{true: "freeze", false: "unfreeze"}[freeze]
	cmd := &cobra.Command{Use: verb + " NAME", Args: cobra.ExactArgs(1),
		Short: map[bool]string{true: "Stop every session of a project at its next request", false: "Let a frozen project's sessions act again"}[freeze]}
	var reason string
	if freeze {
		cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail; required)")
	}
	newClient := adminClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		if err := c.call(cmd.Context(), "POST", "/v1/admin/projects/"+url.PathEscape(args[0])+"/"+verb, map[string]string{"reason": reason}, nil); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "project %s %s\n", args[0], map[bool]string{true: "frozen", false: "unfrozen"}[freeze])
		return nil
	}
	return cmd
}

func agentsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "agents", Short: "Kill agents"}
	kill := &cobra.Command{Use: "kill PROJECT/AGENT", Short: "Stop every session of an agent, now and in future", Args: cobra.ExactArgs(1)}
	var reason string
	kill.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail; required)")
	newClient := adminClient(kill)
	kill.RunE = func(cmd *cobra.Command, args []string) error {
		project, agent, ok := strings.Cut(args[0], "/")
		if !ok || project == "" || agent == "" {
			return fmt.Errorf("name the agent as PROJECT/AGENT, got %q", args[0])
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		path := "/v1/admin/projects/" + url.PathEscape(project) + "/agents/" + url.PathEscape(agent) + "/kill"
		if err := c.call(cmd.Context(), "POST", path, map[string]string{"reason": reason}, nil); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "agent %s/%s killed\n", project, agent)
		return nil
	}
	cmd.AddCommand(kill)
	return cmd
}

func sessionsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "List, show and kill agent sessions"}

	list := &cobra.Command{Use: "list", Short: "List sessions", Args: cobra.NoArgs}
	var project string
	list.Flags().StringVar(&project, "project", "", "only this project's sessions")
	newList := adminClient(list)
	list.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newList()
		if err != nil {
			return err
		}
		var out []server.SessionView
		if err := c.call(cmd.Context(), "GET", "/v1/admin/sessions?project="+url.QueryEscape(project), nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSION\tPROJECT\tAGENT\tSTATE\tEXPIRES\tREASON")
		for _, s := range out {
			reason := s.KillReason
			if reason != "" {
				reason += " (" + s.KilledBy + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Project, s.Agent, s.State, s.ExpiresAt.Format(time.RFC3339), reason)
		}
		return tw.Flush()
	}

	show := &cobra.Command{Use: "show ID", Short: "Show one session", Args: cobra.ExactArgs(1)}
	newShow := adminClient(show)
	show.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newShow()
		if err != nil {
			return err
		}
		var s server.SessionView
		if err := c.call(cmd.Context(), "GET", "/v1/admin/sessions/"+url.PathEscape(args[0]), nil, &s); err != nil {
			return err
		}
		return writeJSON(cmd.OutOrStdout(), s)
	}

	kill := &cobra.Command{Use: "kill ID", Short: "Stop a session at its next request", Args: cobra.ExactArgs(1)}
	var reason string
	kill.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail; required)")
	newKill := adminClient(kill)
	kill.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newKill()
		if err != nil {
			return err
		}
		if err := c.call(cmd.Context(), "POST", "/v1/admin/sessions/"+url.PathEscape(args[0])+"/kill", map[string]string{"reason": reason}, nil); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "session %s killed\n", args[0])
		return nil
	}
	pause := &cobra.Command{Use: "pause ID", Short: "Stop a session until it is resumed", Args: cobra.ExactArgs(1)}
	var pauseReason string
	pause.Flags().StringVar(&pauseReason, "reason", "", "why (recorded in the audit trail; required)")
	newPause := adminClient(pause)
	pause.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newPause()
		if err != nil {
			return err
		}
		if err := c.call(cmd.Context(), "POST", "/v1/admin/sessions/"+url.PathEscape(args[0])+"/pause", map[string]string{"reason": pauseReason}, nil); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "session %s paused; resume it with: warden sessions resume %s\n", args[0], args[0])
		return nil
	}
	resume := &cobra.Command{Use: "resume ID", Short: "Let a paused session (the watchdog's, or yours) go on", Args: cobra.ExactArgs(1)}
	newResume := adminClient(resume)
	resume.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newResume()
		if err != nil {
			return err
		}
		if err := c.call(cmd.Context(), "POST", "/v1/admin/sessions/"+url.PathEscape(args[0])+"/resume", map[string]string{}, nil); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "session %s resumed\n", args[0])
		return nil
	}
	cmd.AddCommand(list, show, kill, pause, resume)
	return cmd
}

func auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit trail"}
	tail := &cobra.Command{Use: "tail", Short: "Show audit records as they arrive", Args: cobra.NoArgs}
	var after int64
	var follow bool
	var format string
	var n int
	tail.Flags().Int64Var(&after, "after", -1, "start after this sequence number (default: the last --lines records)")
	tail.Flags().IntVarP(&n, "lines", "n", 20, "how many past records to show first (1 to 1000)")
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep waiting for new records")
	tail.Flags().StringVar(&format, "format", "text", "output format: text or json (one record a line)")
	var session string
	var denied bool
	tail.Flags().StringVar(&session, "session", "", "only this session's records")
	tail.Flags().BoolVar(&denied, "denied", false, "only refused requests (denied, awaiting approval, refused)")
	newClient := adminClient(tail)
	tail.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		filter := url.Values{}
		if session != "" {
			filter.Set("session", session)
		}
		if denied {
			filter.Set("effect", "denied")
		}
		var backlog []audit.Record
		if len(filter) == 0 {
			path := fmt.Sprintf("/v1/admin/audit?after=%d&limit=1000", after)
			if after < 0 {
				// At least one record, so that following starts after the newest.
				path = fmt.Sprintf("/v1/admin/audit?last=%d&limit=1000", min(max(n, 1), 1000))
			}
			if err := c.call(cmd.Context(), "GET", path, nil, &backlog); err != nil {
				return err
			}
		} else {
			// The last n matching records: page through the matches.
			var latest []audit.Record
			if err := c.call(cmd.Context(), "GET", "/v1/admin/audit?last=1", nil, &latest); err != nil {
				return err
			}
			start := max(after, 0)
			for {
				var page []audit.Record
				if err := c.call(cmd.Context(), "GET", fmt.Sprintf("/v1/admin/audit?after=%d&limit=1000&%s", start, filter.Encode()), nil, &page); err != nil {
					return err
				}
				if len(page) == 0 {
					break
				}
				backlog = append(backlog, page...)
				if after < 0 && len(backlog) > n {
					backlog = backlog[len(backlog)-n:]
				}
				start = page[len(page)-1].Seq
			}
			if len(latest) > 0 {
				after = latest[0].Seq
			}
		}
		if len(backlog) > 0 {
			after = max(after, backlog[len(backlog)-1].Seq)
		} else if after < 0 {
			after = 0
		}
		for {
			for _, r := range backlog {
				if err := printRecord(out, r, format); err != nil {
					return err
				}
			}
			if !follow {
				return nil
			}
			backlog = nil
			if err := c.call(cmd.Context(), "GET", fmt.Sprintf("/v1/admin/audit?after=%d&limit=1000&wait=30s&%s", after, filter.Encode()), nil, &backlog); err != nil {
				return err
			}
			if len(backlog) > 0 {
				after = backlog[len(backlog)-1].Seq
			}
		}
	}
	cmd.AddCommand(tail, queryCommand(), replayCommand(), verifyCommand(), exportCommand())
	return cmd
}

func verifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit trail's hash chains and report the first break (exit 1)",
		Long: `verify recomputes every record's hash and its links to the previous record of
the log and of its session, and checks them against the signed digests. It
checks the server's trail; with --file an export (JSON Lines, as written by
"warden audit export"), with --dir a directory written by "export --dir", and
with --archive an archive of batches (the server's archive directory, or one
written by "export --archive"), offline.`,
		Args: cobra.NoArgs,
	}
	var file, dir, archive, keyFile string
	cmd.Flags().StringVar(&file, "file", "", "verify this JSON Lines export (chains only) instead of the server's trail")
	cmd.Flags().StringVar(&dir, "dir", "", "verify a directory written by export --dir: chains and signed digests")
	cmd.Flags().StringVar(&archive, "archive", "", "verify an archive of batches: objects, chains and signed batch digests")
	cmd.Flags().StringVar(&keyFile, "key", "", "with --archive: the public key to check against, as GET /v1/audit/public-key answers it (default: the key published in the archive)")
	newClient := adminClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var rep audit.Report
		switch {
		case archive != "":
			var err error
			if rep, err = verifyArchive(cmd, archive, keyFile); err != nil {
				return err
			}
		case dir != "":
			pub, digests, err := readExportDir(dir)
			if err != nil {
				return err
			}
			if rep, err = verifyFile(filepath.Join(dir, "audit.jsonl"), audit.NewDigestChecker(pub, digests)); err != nil {
				return err
			}
			rep.Digests = len(digests)
		case file != "":
			var err error
			if rep, err = verifyFile(file, nil); err != nil {
				return err
			}
		default:
			c, err := newClient()
			if err != nil {
				return err
			}
			if err := c.call(cmd.Context(), "GET", "/v1/admin/audit/verify", nil, &rep); err != nil {
				return err
			}
		}
		switch {
		case rep.Break != nil:
			fmt.Fprintf(cmd.ErrOrStderr(), "BROKEN after %d good records: %v\n", rep.Records, rep.Break)
			return exitError{1}
		case rep.DigestError != "":
			fmt.Fprintf(cmd.ErrOrStderr(), "BROKEN: the trail contradicts a signed digest: %s\n", rep.DigestError)
			return exitError{1}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "ok: %d records, chains intact, %d signed digests match\n", rep.Records, rep.Digests)
		return nil
	}
	return cmd
}

// verifyArchive verifies an archive directory against the key in keyFile
// or, without one, the key the archive publishes, which it names.
func verifyArchive(cmd *cobra.Command, root, keyFile string) (audit.Report, error) {
	ctx := cmd.Context()
	store := audit.DirStore{Root: root}
	var pub ed25519.PublicKey
	if keyFile != "" {
		var err error
		if pub, err = readPublicKey(keyFile); err != nil {
			return audit.Report{}, err
		}
	} else {
		first, err := readFirstDigest(ctx, store)
		if err != nil {
			return audit.Report{}, err
		}
		if pub, err = audit.ArchiveKey(ctx, store, first.KeyID); err != nil {
			return audit.Report{}, err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "checking against key %s, published in the archive: compare it with the server's (GET /v1/audit/public-key) or pass --key\n", first.KeyID)
	}
	start := time.Now()
	last := start
	return audit.VerifyArchive(ctx, store, pub, func(batch, records int64) {
		if now := time.Now(); now.Sub(last) > 2*time.Second {
			last = now
			fmt.Fprintf(cmd.ErrOrStderr(), "  batch %d, %d records verified (%s)\n", batch, records, now.Sub(start).Round(time.Second))
		}
	})
}

// readFirstDigest reads batch 1's digest, which names the signing key.
func readFirstDigest(ctx context.Context, store audit.DirStore) (audit.Digest, error) {
	rc, err := store.Open(ctx, audit.DigestKey(1))
	if errors.Is(err, audit.ErrNotArchived) {
		return audit.Digest{}, fmt.Errorf("%s holds no archive (no %s)", store.Root, audit.DigestKey(1))
	}
	if err != nil {
		return audit.Digest{}, err
	}
	defer rc.Close()
	var d audit.Digest
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&d); err != nil {
		return audit.Digest{}, fmt.Errorf("%s: %w", audit.DigestKey(1), err)
	}
	return d, nil
}

// verifyFile verifies an export, and checks it against signed digests when
// dc is not nil. An export that starts mid-log is verified from its first
// record's predecessor.
func verifyFile(name string, dc *audit.DigestChecker) (audit.Report, error) {
	f, err := os.Open(name)
	if err != nil {
		return audit.Report{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var v audit.Verifier
	line := 0
	for sc.Scan() {
		line++
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return audit.Report{}, fmt.Errorf("%s:%d: not an audit record: %v", name, line, err)
		}
		if line == 1 && r.Seq > 1 {
			v.Start(r.Seq-1, r.Prev)
		}
		if b := v.Check(r); b != nil {
			return audit.Report{Records: v.Count, Break: b}, nil
		}
		if dc != nil {
			if err := dc.Check(r); err != nil {
				return audit.Report{Records: v.Count, DigestError: err.Error()}, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return audit.Report{}, fmt.Errorf("read %s: %w", name, err)
	}
	if dc != nil {
		if err := dc.Done(); err != nil {
			return audit.Report{Records: v.Count, DigestError: err.Error()}, nil
		}
	}
	return audit.Report{OK: true, Records: v.Count}, nil
}

func exportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the audit trail as JSON Lines, a verifiable export, or the archive's batches",
		Long: `export writes the audit trail as JSON Lines to stdout. With --dir it writes a
directory that "warden audit verify --dir" checks offline: audit.jsonl (the
records), digests.jsonl (the signed digests) and public-key.json (the key
that signed them). With --archive it copies the server's archive — batches of
records as gzip-compressed JSON Lines, each with its signed digest, and the
public key, in the layout the AWS archiver writes to S3 — into a directory
that "warden audit verify --archive" checks; objects already there are kept,
so a second run copies only new batches.`,
		Args: cobra.NoArgs,
	}
	var after int64
	var dir, archive string
	cmd.Flags().Int64Var(&after, "after", 0, "start after this sequence number")
	cmd.Flags().StringVar(&dir, "dir", "", "write a verifiable export into this directory")
	cmd.Flags().StringVar(&archive, "archive", "", "copy the server's archived batches into this directory")
	newClient := adminClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		switch {
		case dir != "" && archive != "":
			return errors.New("--dir and --archive are two kinds of export: pick one")
		case archive != "":
			return exportArchive(cmd, c, archive)
		case dir == "":
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			_, err := exportRecords(cmd.Context(), c, after, out)
			return err
		}
		if after != 0 {
			return errors.New("--dir exports the whole trail, which its digests cover; --after is for stdout")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		var key audit.PublicKeyInfo
		if err := c.call(cmd.Context(), "GET", "/v1/audit/public-key", nil, &key); err != nil {
			return err
		}
		var digests []audit.Digest
		if err := c.call(cmd.Context(), "GET", "/v1/admin/audit/digests", nil, &digests); err != nil {
			return err
		}
		keyJSON, _ := json.MarshalIndent(key, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "public-key.json"), append(keyJSON, '\n'), 0o600); err != nil {
			return err
		}
		var d strings.Builder
		for _, dg := range digests {
			b, _ := json.Marshal(dg)
			d.Write(append(b, '\n'))
		}
		if err := os.WriteFile(filepath.Join(dir, "digests.jsonl"), []byte(d.String()), 0o600); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(dir, "audit.jsonl"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		n, err := exportRecords(cmd.Context(), c, after, w)
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "exported %d records and %d signed digests to %s (key %s)\n", n, len(digests), dir, key.KeyID)
		return nil
	}
	return cmd
}

// exportArchive copies the server's archive into root: the public keys,
// then each batch digest after the object it names, so that the copy, if
// interrupted, is an archive that verifies up to where it stopped.
func exportArchive(cmd *cobra.Command, c *apiClient, root string) error {
	ctx := cmd.Context()
	store := audit.DirStore{Root: root}
	copyObject := func(key string) (copied bool, err error) {
		if rc, err := store.Open(ctx, key); err == nil {
			rc.Close()
			return false, nil // write-once: what is there is kept
		}
		data, err := c.do(ctx, "GET", "/v1/admin/audit/archive/"+key, nil, 1<<30)
		if err != nil {
			return false, err
		}
		return true, store.Create(ctx, key, data)
	}
	list := func(prefix string) ([]string, error) {
		var l server.ArchiveList
		err := c.call(ctx, "GET", "/v1/admin/audit/archive?prefix="+url.QueryEscape(prefix), nil, &l)
		return l.Keys, err
	}
	keys, err := list("keys/")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := copyObject(k); err != nil {
			return err
		}
	}
	digests, err := list("digests/")
	if err != nil {
		return err
	}
	batches, objects := 0, 0
	for _, k := range digests {
		data, err := c.do(ctx, "GET", "/v1/admin/audit/archive/"+k, nil, 1<<20)
		if err != nil {
			return err
		}
		var d audit.Digest
		if err := json.Unmarshal(data, &d); err != nil || d.Object == nil {
			return fmt.Errorf("%s from the server is not a batch digest", k)
		}
		copied, err := copyObject(d.Object.Key)
		if err != nil {
			return err
		}
		if copied {
			objects++
		}
		if copied, err = copyObject(k); err != nil {
			return err
		}
		if copied {
			batches++
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "copied %d new batches (%d objects) into %s; it now holds %d batches — check it with: warden audit verify --archive %s\n",
		batches, objects, root, len(digests), root)
	return nil
}

// exportRecords writes the records after seq after as JSON Lines.
func exportRecords(ctx context.Context, c *apiClient, after int64, w io.Writer) (int, error) {
	n := 0
	for {
		var recs []audit.Record
		if err := c.call(ctx, "GET", fmt.Sprintf("/v1/admin/audit?after=%d&limit=1000", after), nil, &recs); err != nil {
			return n, err
		}
		if len(recs) == 0 {
			return n, nil
		}
		for _, r := range recs {
			if err := printRecord(w, r, "json"); err != nil {
				return n, err
			}
			n++
		}
		after = recs[len(recs)-1].Seq
	}
}

// readExportDir reads the public key and digests of a verifiable export.
func readExportDir(dir string) (ed25519.PublicKey, []audit.Digest, error) {
	pub, err := readPublicKey(filepath.Join(dir, "public-key.json"))
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "digests.jsonl"))
	if err != nil {
		return nil, nil, err
	}
	var digests []audit.Digest
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var d audit.Digest
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			return nil, nil, fmt.Errorf("digests.jsonl:%d: %w", i+1, err)
		}
		digests = append(digests, d)
	}
	return pub, digests, nil
}

// readPublicKey reads a public key as GET /v1/audit/public-key answers it.
func readPublicKey(name string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var info audit.PublicKeyInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pub, err := info.Key()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return pub, nil
}

func queryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Find audit records by session, project, agent, action, decision, rule and time",
		Example: `  warden audit query --session d97e2169 --format json
  warden audit query --project project-a --action 'git:*' --decision deny --since 2026-11-26T00:00:00Z`,
		Args: cobra.NoArgs,
	}
	var f struct{ session, project, agent, action, decision, rule, since, until, format string }
	var limit int
	fl := cmd.Flags()
	fl.StringVar(&f.session, "session", "", "Warden session ID")
	fl.StringVar(&f.project, "project", "", "project")
	fl.StringVar(&f.agent, "agent", "", "agent")
	fl.StringVar(&f.action, "action", "", "action glob, e.g. 'tool:*'")
	fl.StringVar(&f.decision, "decision", "", "allow, deny, approve, or denied (every refusal)")
	fl.StringVar(&f.rule, "rule", "", "deciding rule ID")
	fl.StringVar(&f.since, "since", "", "from this time (RFC 3339)")
	fl.StringVar(&f.until, "until", "", "before this time (RFC 3339)")
	fl.StringVar(&f.format, "format", "table", "table or json (one record a line)")
	fl.IntVar(&limit, "limit", 1000, "at most this many records")
	newClient := adminClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range map[string]string{"session": f.session, "project": f.project, "agent": f.agent, "action": f.action,
			"effect": f.decision, "rule": f.rule, "since": f.since, "until": f.until} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var recs []audit.Record
		var after int64
		for len(recs) < limit {
			var page []audit.Record
			path := fmt.Sprintf("/v1/admin/audit?after=%d&limit=%d&%s", after, min(limit-len(recs), 1000), q.Encode())
			if err := c.call(cmd.Context(), "GET", path, nil, &page); err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			recs = append(recs, page...)
			after = page[len(page)-1].Seq
		}
		out := cmd.OutOrStdout()
		if f.format == "json" {
			for _, r := range recs {
				if err := printRecord(out, r, "json"); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tCODE\tPROJECT/AGENT\tSESSION\tACTION\tRESOURCE\tRULE")
		for _, r := range recs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format(time.RFC3339), r.Code, r.Project, r.Agent,
				r.Session, r.Action, truncate(r.Resource, 60), r.Rule)
		}
		return tw.Flush()
	}
	return cmd
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func replayCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "replay SESSION", Short: "Show a session as a timeline: tool calls, decisions, outcomes, the kill", Args: cobra.ExactArgs(1)}
	var format string
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	newClient := adminClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		var rv server.ReplayView
		if err := c.call(cmd.Context(), "GET", "/v1/admin/sessions/"+url.PathEscape(args[0])+"/replay", nil, &rv); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if format == "json" {
			return writeJSON(out, rv)
		}
		s := rv.Session
		fmt.Fprintf(out, "session %s  %s/%s  %s  created %s\n", s.ID, s.Project, s.Agent, s.State, s.CreatedAt.Format(time.RFC3339))
		for _, e := range rv.Events {
			fmt.Fprintln(out, e.String())
		}
		return nil
	}
	return cmd
}
