// Package e2e runs the real Claude Code and Codex CLIs headless against a scripted local stand-in
// of the model APIs, so that tests can make a client run shell commands the way an agent would.
//
// The pieces are:
//   - Clients installs the pinned npm packages (@anthropic-ai/claude-code 2.1.332,
//     @openai/codex 0.169.0) once, through install-clients.sh, and returns their executables.
//   - ModelStub serves the Anthropic Messages API and the OpenAI Responses API on 127.0.0.1 and
//     plays a script of Steps: Bash asks the client to run a command, Say ends the turn with text.
//     It records every request, including the tool results the client sends back.
//   - RunClaude and RunCodex run one headless client session with a fresh home directory, an
//     offline environment (any call to an outside host goes to a refusing local proxy and is
//     reported in Result.Egress) and optional hooks.
//   - GitRemote makes a bare repository and a clone, so a scripted git push has a visible effect.
//
// Hooks, as the tests here show them working:
//   - Claude Code: ClaudeOptions.Settings (a file passed with --settings) runs hooks without any
//     trust step. Its managed tier is read only from /etc/claude-code/managed-settings.json.
//   - Codex: user hooks in $CODEX_HOME/config.toml are skipped (the tool runs) unless trusted.
//     RunCodex trusts CodexOptions.Hooks by recording [hooks.state."CONFIG:EVENT:GROUP:0"]
//     trusted_hash in config.toml, or with --dangerously-bypass-hook-trust (TrustBypass). Its
//     managed tier (/etc/codex/requirements.toml) has no other location in release builds.
//
// Only script harmless commands: the clients really execute them.
package e2e
