#!/usr/bin/env bash
# install-awscli.sh installs Debian's AWS CLI (package awscli, /usr/bin/aws), which the credential
# broker's end-to-end test runs with credential_process, and prints its path on the last line:
#   aws=/usr/bin/aws
# Installed with apt-get when missing (needs root; runs `apt-get update` first only if the install
# fails without it); a second run returns at once. Parallel test processes wait for each other on a
# lock file. Another AWS CLI on PATH (pip's, pyenv's) is not used: the test wants Debian's.
set -euo pipefail

bin=/usr/bin/aws
dir="${XDG_CACHE_HOME:-$HOME/.cache}/warden/awscli"

die() {
	echo "install-awscli: $*" >&2
	exit 1
}

ready() { [[ -x "$bin" ]] && dpkg-query -W -f='${Status}' awscli 2>/dev/null | grep -q "install ok installed"; }

if ready; then
	echo "aws=${bin}"
	exit 0
fi
mkdir -p "$dir" || die "cannot create $dir"
exec 9>"${dir}/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9 || die "cannot lock ${dir}/.lock"
fi
if ready; then
	echo "aws=${bin}"
	exit 0
fi
command -v apt-get >/dev/null 2>&1 || die "Debian's awscli is missing and there is no apt-get"
[[ "$(id -u)" == 0 ]] || die "Debian's awscli is missing: run 'sudo apt-get install awscli' (this script installs it only as root)"
echo "install-awscli: installing Debian's awscli (once per machine)" >&2
log="${dir}/apt.log"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends awscli >"$log" 2>&1; then
	# A fresh machine may have no package lists yet.
	apt-get update >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update failed (full log: ${log})"; }
	apt-get install -y --no-install-recommends awscli >>"$log" 2>&1 ||
		{ tail -n 20 "$log" >&2; die "apt-get install awscli failed (full log: ${log})"; }
fi
ready || die "awscli is installed but ${bin} is not there"
echo "aws=${bin}"
