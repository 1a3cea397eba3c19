#!/usr/bin/env bash
# install-asl-validator.sh installs a pinned version of asl-validator (npm; the Amazon States
# Language validator, MIT), which the infra tests run on the approvals state machine's definition,
# and prints the path of its command.
#
# The directory is ${WARDEN_ASL_VALIDATOR_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/asl-validator/<version>}.
# A finished install leaves a stamp file there, so a second run only checks that the command still
# exists and returns at once. Parallel test processes wait for each other on a lock file. Override
# the version with ASL_VALIDATOR_VERSION.
set -euo pipefail

version="${ASL_VALIDATOR_VERSION:-4.0.0}"
dir="${WARDEN_ASL_VALIDATOR_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/asl-validator/${version}}"
stamp="${dir}/.installed-asl-validator-${version}"
bin="${dir}/node_modules/.bin/asl-validator"

die() {
	echo "install-asl-validator: $*" >&2
	exit 1
}

if [[ -f "$stamp" && -x "$bin" ]]; then
	echo "$bin"
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
if [[ -f "$stamp" && -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

echo "install-asl-validator: installing asl-validator@${version} into ${dir}" >&2
# A package.json of our own keeps npm from walking up to an unrelated project.
[[ -f "${dir}/package.json" ]] || echo '{"name":"warden-asl-validator","private":true}' >"${dir}/package.json"
npm install --no-audit --no-fund --loglevel=error --prefix "$dir" "asl-validator@${version}" >&2 ||
	die "npm install failed"

[[ -x "$bin" ]] || die "asl-validator entry point missing after install: $bin"
"$bin" --version >/dev/null 2>&1 || die "asl-validator does not run: $bin --version failed"

touch "$stamp"
echo "$bin"
