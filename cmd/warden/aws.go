package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/broker"
	"github.com/wardenhq/warden/shared/hooks"
	"github.com/wardenhq/warden/shared/server"
)

func awsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "aws", Short: "AWS credentials from Warden's credential broker"}
	cmd.AddCommand(credentialProcessCommand())
	return cmd
}

// credentialRefresh is how long before its expiry a cached credential is
// replaced: the AWS SDKs refresh within the last five minutes too.
const credentialRefresh = 5 * time.Minute

func credentialProcessCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential-process",
		Short: "Print this session's AWS credentials, for credential_process in ~/.aws/config",
		Long: `warden aws credential-process asks Warden's credential broker for short-lived
AWS credentials of the agent runtime role, scoped by a session policy compiled
from the Warden policy, and prints them as the AWS CLI and SDKs expect from a
credential_process. It keeps them (0600, in the user's cache directory) until
five minutes before they expire.

With --action and --resource it asks for a credential for that one action on
that resource: what an approve rule sends to humans. It waits --approval-wait
for the decision, and fails, naming the approval, if it is still pending.

warden agent setup writes the profile:

  [profile warden]
  credential_process = warden aws credential-process`,
		Args: cobra.NoArgs,
	}
	var (
		req          broker.Request
		approvalWait time.Duration
		cacheDir     string
		noCache      bool
	)
	cmd.Flags().StringVar(&req.Action, "action", "", "one AWS action (service:Action) to ask a credential for, with --resource")
	cmd.Flags().StringVar(&req.Resource, "resource", "", "the resource ARN of --action")
	cmd.Flags().DurationVar(&approvalWait, "approval-wait", 0, "how long to wait for a human to decide a request that needs approval")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "where credentials are kept until they near expiry (default: the user's cache directory/warden)")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "always ask Warden")
	newClient := clientFlags(cmd, sessionTokenEnv, "session token", false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if (req.Action == "") != (req.Resource == "") {
			return errors.New("give --action and --resource together")
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		var path string
		if !noCache {
			if path, err = credentialCachePath(cacheDir, c, req); err != nil {
				return err
			}
			if creds, ok := cachedCredentials(path, time.Now()); ok {
				return writeJSON(cmd.OutOrStdout(), creds)
			}
		}
		creds, err := requestCredentials(cmd.Context(), c, req, approvalWait)
		if err != nil {
			return err
		}
		if path != "" {
			if err := cacheCredentials(path, creds); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warden: credentials not cached: %v\n", err)
			}
		}
		return writeJSON(cmd.OutOrStdout(), creds)
	}
	return cmd
}

// requestCredentials asks the broker, waiting for an approval when the
// request needs one.
func requestCredentials(ctx context.Context, c *apiClient, req broker.Request, approvalWait time.Duration) (broker.Credentials, error) {
	creds, pending, err := postCredentials(ctx, c, req)
	if err != nil || pending == "" {
		return creds, err
	}
	if approvalWait > 0 {
		wctx, cancel := context.WithTimeout(ctx, approvalWait+time.Second)
		st, err := waitApproval(wctx, c, pending)
		cancel()
		switch {
		case err != nil:
			return creds, fmt.Errorf("waiting for approval %s: %w", pending, err)
		case st.State == approval.Approved:
			creds, again, err := postCredentials(ctx, c, req)
			if err == nil && again != "" {
				err = fmt.Errorf("approval %s is pending", again)
			}
			return creds, err
		case st.State != approval.Pending:
			return creds, fmt.Errorf("approval %s %s", pending, st.Status)
		}
	}
	return creds, fmt.Errorf("approval %s is pending: ask again once it is approved (warden approvals show %s)", pending, pending)
}

// postCredentials asks once: the credentials, or the approval the request
// waits on, or why not.
func postCredentials(ctx context.Context, c *apiClient, req broker.Request) (broker.Credentials, string, error) {
	var creds broker.Credentials
	body, err := json.Marshal(req)
	if err != nil {
		return creds, "", err
	}
	r, err := http.NewRequestWithContext(ctx, "POST", c.endpoint+server.AWSCredentialsPath, bytes.NewReader(body))
	if err != nil {
		return creds, "", err
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(r)
	if err != nil {
		return creds, "", fmt.Errorf("Warden at %s is unreachable: %w", c.endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return creds, "", fmt.Errorf("reading Warden's answer: %w", err)
	}
	if id := resp.Header.Get(hooks.ApprovalHeader); id != "" {
		return creds, id, nil
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return creds, "", fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return creds, "", fmt.Errorf("Warden answered HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(data, &creds); err != nil || creds.Version != 1 || creds.AccessKeyID == "" {
		return broker.Credentials{}, "", errors.New("Warden's answer holds no credentials")
	}
	return creds, "", nil
}

// credentialCachePath is where the credentials of this endpoint, token
// and request are kept: named by a hash, never by the token.
func credentialCachePath(dir string, c *apiClient, req broker.Request) (string, error) {
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory (%v): pass --cache-dir or --no-cache", err)
		}
		dir = filepath.Join(base, "warden")
	}
	sum := sha256.Sum256([]byte(c.endpoint + "\x00" + c.token + "\x00" + req.Action + "\x00" + req.Resource))
	return filepath.Join(dir, "aws-"+hex.EncodeToString(sum[:12])+".json"), nil
}

// cachedCredentials returns the kept credentials unless they are missing,
// unreadable or near their expiry.
func cachedCredentials(path string, now time.Time) (broker.Credentials, bool) {
	var creds broker.Credentials
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &creds) != nil || creds.Version != 1 || creds.AccessKeyID == "" {
		return creds, false
	}
	return creds, now.Add(credentialRefresh).Before(creds.Expiration)
}

// cacheCredentials keeps creds, readable by the user alone.
func cacheCredentials(path string, creds broker.Credentials) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(creds)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".aws-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
