#!/usr/bin/env bash
# install-cdk.sh installs a pinned version of the AWS CDK CLI (npm aws-cdk) for `make deploy`
# and prints the path of its cdk command.
#
# The directory is ${WARDEN_CDK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/cdk/<version>}. A
# finished install leaves a stamp file there, so a second run only checks that the command still
# exists and returns at once. Override the version with CDK_CLI_VERSION.
set -euo pipefail

version="${CDK_CLI_VERSION:-2.1148.1}"
dir="${WARDEN_CDK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/cdk/${version}}"
stamp="${dir}/.installed-aws-cdk-${version}"
cdk_bin="${dir}/node_modules/.bin/cdk"

die() {
	echo "install-cdk: $*" >&2
	exit 1
}

if [[ -f "$stamp" && -x "$cdk_bin" ]]; then
	echo "$cdk_bin"
	exit 0
fi

command -v node >/dev/null 2>&1 || die "node is not installed (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm is not installed (apt-get install npm)"

mkdir -p "$dir" || die "cannot create $dir"
# A lock keeps two makes from installing into the same directory at once.
exec 9>"${dir}/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9 || die "cannot lock ${dir}/.lock"
fi
if [[ -f "$stamp" && -x "$cdk_bin" ]]; then
	echo "$cdk_bin"
	exit 0
fi

echo "install-cdk: installing aws-cdk@${version} into ${dir}" >&2
# A package.json of our own keeps npm from walking up to an unrelated project.
[[ -f "${dir}/package.json" ]] || echo '{"name":"warden-cdk-cli","private":true}' >"${dir}/package.json"
npm install --no-audit --no-fund --loglevel=error --prefix "$dir" "aws-cdk@${version}" >&2 ||
	die "npm install failed"

[[ -x "$cdk_bin" ]] || die "cdk entry point missing after install: $cdk_bin"
CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true "$cdk_bin" --version >/dev/null 2>&1 ||
	die "cdk does not run: $cdk_bin --version failed"

touch "$stamp"
echo "$cdk_bin"
