#!/usr/bin/env bash
# install-clients.sh installs pinned versions of the real Claude Code and Codex CLIs for the
# end-to-end tests in shared/e2e, and prints the directory they were installed into.
#
# The directory is ${WARDEN_CLIENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/clients/<versions>}.
# A finished install leaves a stamp file there, so a second run only checks that the two entry
# points still exist and returns at once. Override the versions with CLAUDE_CODE_VERSION and
# CODEX_VERSION.
set -euo pipefail

claude_version="${CLAUDE_CODE_VERSION:-2.1.332}"
codex_version="${CODEX_VERSION:-0.169.0}"
versions="claude-code-${claude_version}_codex-${codex_version}"
dir="${WARDEN_CLIENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/clients/${versions}}"
stamp="${dir}/.installed-${versions}"
claude_bin="${dir}/node_modules/@anthropic-ai/claude-code/bin/claude.exe"
codex_bin="${dir}/node_modules/@openai/codex/bin/codex.js"

die() {
	echo "install-clients: $*" >&2
	exit 1
}

if [[ -f "$stamp" && -x "$claude_bin" && -x "$codex_bin" ]]; then
	echo "$dir"
	exit 0
fi

command -v node >/dev/null 2>&1 || die "node is not installed (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm is not installed (apt-get install npm)"

mkdir -p "$dir" || die "cannot create $dir"
# A lock keeps parallel test processes from installing into the same directory at once.
exec 9>"${dir}/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9 || die "cannot lock ${dir}/.lock"
fi
if [[ -f "$stamp" && -x "$claude_bin" && -x "$codex_bin" ]]; then
	echo "$dir"
	exit 0
fi

echo "install-clients: installing @anthropic-ai/claude-code@${claude_version} @openai/codex@${codex_version} into ${dir}" >&2
# A package.json of our own keeps npm from walking up to an unrelated project.
[[ -f "${dir}/package.json" ]] || echo '{"name":"warden-e2e-clients","private":true}' >"${dir}/package.json"
npm install --no-audit --no-fund --loglevel=error --prefix "$dir" \
	"@anthropic-ai/claude-code@${claude_version}" "@openai/codex@${codex_version}" >&2 ||
	die "npm install failed"

[[ -x "$claude_bin" ]] || die "claude entry point missing after install: $claude_bin"
[[ -x "$codex_bin" ]] || die "codex entry point missing after install: $codex_bin"
"$claude_bin" --version >/dev/null 2>&1 || die "claude does not run: $claude_bin --version failed"
"$codex_bin" --version >/dev/null 2>&1 || die "codex does not run: $codex_bin --version failed"

touch "$stamp"
echo "$dir"
