package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/policy/shell"
	"github.com/wardenhq/warden/shared/gitproxy"
	"github.com/wardenhq/warden/shared/hooks"
	"github.com/wardenhq/warden/shared/server"
)

// Where the clients read settings that users cannot override.
const (
	claudeManagedSettings = "/etc/claude-code/managed-settings.json"
	codexRequirements     = "/etc/codex/requirements.toml"
)

type setupOptions struct {
	client     string
	token      string
	enrollKey  string
	agent      string
	labels     map[string]string
	ttl        string
	path       string
	wardenPath string
	dryRun     bool
	force      bool
	gateway    bool
	codexConf  string
	// approvalWait is how long a hook waits for an approval; onPending
	// what Claude Code's hook answers when it is still pending then.
	approvalWait time.Duration
	onPending    string
	// awsProfile is the AWS profile written when the broker is on;
	// awsConfig the file it goes in.
	awsProfile, awsConfig string
	// gitconfig is the git configuration file that gets the credential
	// helper and the remotes' rewriting, when Warden proxies git hosts.
	gitconfig string
	noGit     bool
}

func setupCommand() *cobra.Command {
	var o setupOptions
	cmd := &cobra.Command{
		Use:   "setup claude|codex",
		Short: "Log in and write an agent's configuration so that its tool calls go through Warden",
		Long: `setup logs an agent in (or takes --token) and writes the client's configuration:

  claude  managed settings (` + claudeManagedSettings + `, or --path): http PreToolUse and
          PostToolUse hooks on Warden that block when Warden fails, managed hooks only,
          the session token in the hook environment, and Claude Code's model calls
          through Warden's gateway (ANTHROPIC_BASE_URL, ANTHROPIC_AUTH_TOKEN).
  codex   managed requirements (` + codexRequirements + `, or --path): PreToolUse and
          PostToolUse command hooks running "warden hook", which blocks on any failure;
          and a model provider "warden" in Codex's config.toml (--codex-config) that
          sends its model calls through Warden's gateway.

--llm-gateway=false leaves the model calls alone (hooks only).
--dry-run prints the file instead of writing it.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"claude", "codex"},
	}
	f := cmd.Flags()
	f.StringVar(&o.token, "token", "", "an existing session token (default: log in with --enroll-key)")
	f.StringVar(&o.enrollKey, "enroll-key", "", "the project's enrollment key (default $WARDEN_ENROLL_KEY)")
	f.StringVar(&o.agent, "agent", "", "the agent's name (with --enroll-key)")
	f.StringToStringVar(&o.labels, "label", nil, "session labels, k=v")
	f.StringVar(&o.ttl, "ttl", "", "session lifetime (default 12h)")
	f.StringVar(&o.path, "path", "", "write here instead of the managed location")
	f.StringVar(&o.wardenPath, "warden", "", "the warden binary the codex hook runs (default: this one)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what would be written")
	f.BoolVar(&o.force, "force", false, "replace an existing file (a .bak copy is kept)")
	f.BoolVar(&o.gateway, "llm-gateway", true, "send the agent's model calls through Warden's LLM gateway too")
	f.DurationVar(&o.approvalWait, "approval-wait", defaultApprovalWait, "how long a hook waits for a human to decide a request that needs approval (0: not at all)")
	f.StringVar(&o.onPending, "on-pending", "deny", "claude: a request still waiting for approval after --approval-wait is deny (the agent is told, and may ask again) or defer (a -p run ends with the call deferred; `claude -p --resume SESSION` asks again)")
	f.StringVar(&o.awsProfile, "aws-profile", "warden", "the AWS profile whose credential_process asks Warden for the session's AWS credentials, written when Warden's credential broker is on (empty: none)")
	f.StringVar(&o.awsConfig, "aws-config", "", "the AWS config file of --aws-profile (default $AWS_CONFIG_FILE, or ~/.aws/config)")
	f.StringVar(&o.gitconfig, "gitconfig", "", "the git configuration that gets Warden's credential helper and, for each git host Warden proxies, the rewriting of https://HOST/ to Warden's git remote (default $GIT_CONFIG_GLOBAL, or ~/.gitconfig)")
	f.BoolVar(&o.noGit, "no-git", false, "leave git's configuration alone")
	f.StringVar(&o.codexConf, "codex-config", "", "codex: the config.toml that gets the warden model provider (default $CODEX_HOME/config.toml, or ~/.codex/config.toml)")
	newClient := clientFlags(cmd, "", "", false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		o.client = args[0]
		if o.client != "claude" && o.client != "codex" {
			return fmt.Errorf("unknown client %q: claude or codex", o.client)
		}
		switch {
		case o.onPending != "deny" && o.onPending != "defer":
			return fmt.Errorf("--on-pending %q: deny or defer", o.onPending)
		case o.onPending == "defer" && o.client == "codex":
			return errors.New("--on-pending defer is for claude: Codex's hooks cannot defer a call")
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		if o.token == "" {
			if o.enrollKey == "" {
				o.enrollKey = os.Getenv("WARDEN_ENROLL_KEY")
			}
			if o.enrollKey == "" || o.agent == "" {
				return errors.New("give --token, or --enroll-key and --agent to log in")
			}
			s, err := login(cmd.Context(), c, o.enrollKey, o.agent, o.labels, o.ttl)
			if err != nil {
				return err
			}
			o.token = s.Token
			fmt.Fprintf(cmd.ErrOrStderr(), "logged in: session %s for %s/%s, expires %s\n", s.ID, s.Project, s.Agent, s.ExpiresAt.Format("2006-01-02 15:04 MST"))
		}
		var content []byte
		path := o.path
		bin := o.wardenPath
		if bin == "" {
			if bin, err = os.Executable(); err != nil {
				return fmt.Errorf("find the warden binary: %w (pass --warden)", err)
			}
		}
		profile := ""
		if o.awsProfile != "" {
			var st server.AWSStatus
			if err := c.call(cmd.Context(), "GET", "/v1/aws", nil, &st); err != nil {
				return fmt.Errorf("ask whether Warden issues AWS credentials: %w", err)
			}
			if st.Broker {
				profile = o.awsProfile
			}
		}
		switch o.client {
		case "claude":
			content, err = claudeSettings(c.endpoint, o.token, o.gateway, o.approvalWait, o.onPending == "defer", profile)
			if path == "" {
				path = claudeManagedSettings
			}
		case "codex":
			content = codexRequirementsFile(c.endpoint, o.token, bin, o.approvalWait)
			if path == "" {
				path = codexRequirements
			}
		}
		if err != nil {
			return err
		}
		files := []configFile{{path, content, "tool calls"}}
		if o.client == "codex" && o.gateway {
			conf := o.codexConf
			if conf == "" {
				if conf, err = codexConfigPath(); err != nil {
					return err
				}
			}
			files = append(files, configFile{conf, codexProviderFile(c.endpoint, o.token), "model calls"})
		}
		for _, f := range files {
			if o.dryRun {
				fmt.Fprintf(cmd.OutOrStdout(), "# %s\n%s", f.path, f.content)
				continue
			}
			if err := writeConfig(f.path, f.content, o.force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s's %s now go through Warden at %s\n", f.path, o.client, f.what, c.endpoint)
		}
		if !o.noGit {
			if err := setupGit(cmd, c, o, bin); err != nil {
				return err
			}
		}
		if profile == "" {
			return nil
		}
		conf := o.awsConfig
		if conf == "" {
			if conf, err = awsConfigPath(); err != nil {
				return err
			}
		}
		section := awsProfileSection(profile, bin, c.endpoint, o.token)
		if o.dryRun {
			fmt.Fprintf(cmd.OutOrStdout(), "# %s (the profile only)\n%s", conf, section)
			return nil
		}
		if err := writeAWSProfile(conf, profile, section); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote profile %s in %s: AWS credentials come from Warden's broker (AWS_PROFILE=%s)\n", profile, conf, profile)
		return nil
	}
	return cmd
}

// preToolUsePath is Claude Code's PreToolUse hook path: a call that needs a
// human's approval waits for it (?wait=, within the hook's 30 s); still
// pending then, it is denied, or deferred (?pending=defer).
func preToolUsePath(approvalWait time.Duration, deferPending bool) string {
	q := url.Values{}
	if approvalWait > 0 {
		q.Set("wait", min(approvalWait, hooks.MaxWait).String())
	}
	if deferPending {
		q.Set("pending", "defer")
	}
	if len(q) == 0 {
		return "/v1/hooks/pre-tool-use"
	}
	return "/v1/hooks/pre-tool-use?" + q.Encode()
}

// claudeSettings is Claude Code's managed settings: every tool call is
// decided by Warden through http hooks that block when Warden fails.
func claudeSettings(endpoint, token string, gateway bool, approvalWait time.Duration, deferPending bool, awsProfile string) ([]byte, error) {
	hook := func(path string) []any {
		return []any{map[string]any{
			"matcher": "*",
			"hooks": []any{map[string]any{
				"type":           "http",
				"url":            endpoint + path,
				"headers":        map[string]string{"Authorization": "Bearer $" + sessionTokenEnv},
				"allowedEnvVars": []string{sessionTokenEnv},
				"timeout":        30,
				"onFailure":      "block",
			}},
		}}
	}
	settings := map[string]any{
		"hooks": map[string]any{
			"PreToolUse":  hook(preToolUsePath(approvalWait, deferPending)),
			"PostToolUse": hook("/v1/hooks/post-tool-use"),
		},
		"allowManagedHooksOnly":  true,
		"allowedHttpHookUrls":    []string{endpoint + "/*"},
		"httpHookAllowedEnvVars": []string{sessionTokenEnv},
		"permissions":            map[string]any{"disableBypassPermissionsMode": "disable"},
		"env": map[string]string{
			sessionTokenEnv:   token,
			"WARDEN_ENDPOINT": endpoint,
		},
	}
	if awsProfile != "" {
		settings["env"].(map[string]string)["AWS_PROFILE"] = awsProfile
	}
	if gateway {
		env := settings["env"].(map[string]string)
		env["ANTHROPIC_BASE_URL"] = endpoint
		env["ANTHROPIC_AUTH_TOKEN"] = token
		env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// codexRequirementsFile is Codex's managed requirements: command hooks that
// run `warden hook`, which exits 2 (block) on any failure.
func codexRequirementsFile(endpoint, token, bin string, approvalWait time.Duration) []byte {
	command := fmt.Sprintf("%s hook --endpoint %s --token %s", shell.Quote(bin), shell.Quote(endpoint), shell.Quote(token))
	if approvalWait != defaultApprovalWait {
		command += " --approval-wait " + approvalWait.String()
	}
	var b strings.Builder
	b.WriteString("# Written by `warden agent setup codex`: every tool call is decided by Warden.\n")
	for _, event := range []string{"PreToolUse", "PostToolUse"} {
		// No matcher: the hook sees every tool.
		fmt.Fprintf(&b, "\n[[hooks.%s]]\n\n[[hooks.%s.hooks]]\ntype = \"command\"\ncommand = %s\ntimeout = 30\n",
			event, event, strconv.Quote(command))
	}
	return []byte(b.String())
}

// configFile is a file setup writes.
type configFile struct {
	path    string
	content []byte
	what    string // what it routes through Warden
}

// codexConfigPath is Codex's user configuration file.
func codexConfigPath() (string, error) {
	if h := os.Getenv("CODEX_HOME"); h != "" {
		return filepath.Join(h, "config.toml"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find Codex's config.toml: %w (pass --codex-config)", err)
	}
	return filepath.Join(home, ".codex", "config.toml"), nil
}

// codexProviderFile is a Codex config.toml whose model provider is
// Warden's gateway, with the session token as its bearer token.
func codexProviderFile(endpoint, token string) []byte {
	return []byte(fmt.Sprintf(`# Written by `+"`warden agent setup codex`"+`: Codex's model calls go through Warden.
model_provider = "warden"

[model_providers.warden]
name = "Warden"
base_url = %s
wire_api = "responses"
experimental_bearer_token = %s
`, strconv.Quote(strings.TrimSuffix(endpoint, "/")+"/v1"), strconv.Quote(token)))
}

// writeConfig writes a configuration file, refusing to replace one unless
// forced. It holds a session token, so it is readable by its owner only,
// except at the managed locations, which the client (running as the user)
// must be able to read.
func writeConfig(path string, content []byte, force bool) error {
	mode := os.FileMode(0o600)
	if path == claudeManagedSettings || path == codexRequirements {
		mode = 0o644
	}
	if old, err := os.ReadFile(path); err == nil {
		if !force {
			return fmt.Errorf("%s exists; pass --force to replace it (a .bak copy is kept) or --path to write elsewhere", path)
		}
		if err := os.WriteFile(path+".bak", old, 0o600); err != nil {
			return fmt.Errorf("back up %s: %w", path, err)
		}
	}
	return atomicWrite(path, content, mode, 0o755)
}

// atomicWrite writes content to path through a file of its own beside it,
// renamed over path once whole: a reader sees the old file or the new one,
// never a part. Missing directories are made with dirMode.
func atomicWrite(path string, content []byte, mode, dirMode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".warden-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// awsConfigPath is the AWS CLI's and SDKs' shared config file.
func awsConfigPath() (string, error) {
	if p := os.Getenv("AWS_CONFIG_FILE"); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the AWS config file: %w (pass --aws-config)", err)
	}
	return filepath.Join(home, ".aws", "config"), nil
}

// awsProfileSection is the AWS profile whose credentials come from the
// broker through `warden aws credential-process`.
func awsProfileSection(profile, bin, endpoint, token string) string {
	return fmt.Sprintf("[profile %s]\n# Written by `warden agent setup`: short-lived credentials from Warden's broker.\ncredential_process = %s aws credential-process --endpoint %s --token %s\n",
		profile, shell.Quote(bin), shell.Quote(endpoint), shell.Quote(token))
}

// writeAWSProfile puts section in the AWS config file at path, in place of
// the profile's section if there is one, keeping the other profiles as
// they are. The file holds a session token: it is readable by its owner
// only.
func writeAWSProfile(path, profile, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var out []string
	lines := strings.SplitAfter(string(old), "\n")
	header := "[profile " + profile + "]"
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != header {
			if lines[i] != "" {
				out = append(out, lines[i])
			}
			continue
		}
		for i+1 < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "[") {
			i++
		}
	}
	text := strings.Join(out, "")
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	if text != "" && !strings.HasSuffix(text, "\n\n") {
		text += "\n"
	}
	return atomicWrite(path, []byte(text+section), 0o600, 0o700)
}

// setupGit points the agent's git at Warden for the hosts Warden proxies:
// https://HOST/ is rewritten to <endpoint>/git/HOST/, and Warden's
// credential helper answers for the endpoint with the session token. It
// writes with git itself; nothing when Warden proxies no host.
func setupGit(cmd *cobra.Command, c *apiClient, o setupOptions, bin string) error {
	var st server.GitStatus
	if err := c.call(cmd.Context(), "GET", "/v1/git", nil, &st); err != nil {
		return fmt.Errorf("ask which git hosts Warden proxies: %w", err)
	}
	if len(st.Hosts) == 0 {
		return nil
	}
	path := o.gitconfig
	if path == "" {
		path = os.Getenv("GIT_CONFIG_GLOBAL")
	}
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("find git's configuration: %w (pass --gitconfig)", err)
		}
		path = filepath.Join(home, ".gitconfig")
	}
	settings := [][2]string{{"credential." + c.endpoint + ".helper",
		shell.Quote(bin) + " git-credential --endpoint " + shell.Quote(c.endpoint) + " --token " + shell.Quote(o.token)}}
	settings = append(settings, gitproxy.ClientSettings(c.endpoint, st.Hosts, st.MaxPushBytes)...)
	if o.dryRun {
		fmt.Fprintf(cmd.OutOrStdout(), "# %s\n", path)
		for _, kv := range settings {
			fmt.Fprintf(cmd.OutOrStdout(), "git config --file %s %s %s\n", path, kv[0], shell.Quote(kv[1]))
		}
		return nil
	}
	git, err := exec.LookPath("git")
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "git is not installed: its configuration is left alone\n")
		return nil
	}
	for _, kv := range settings {
		out, err := exec.CommandContext(cmd.Context(), git, "config", "--file", path, "--replace-all", kv[0], kv[1]).CombinedOutput()
		if err != nil {
			return fmt.Errorf("git config --file %s %s: %v: %s", path, kv[0], err, strings.TrimSpace(string(out)))
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: git's remotes on %s go through Warden at %s\n", path, strings.Join(st.Hosts, ", "), c.endpoint)
	if st.MaxPushBytes > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "  this Warden takes pushes of up to %d bytes: git asks before sending a larger one, and Warden refuses it\n", st.MaxPushBytes)
	}
	return nil
}
