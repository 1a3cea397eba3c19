#!/usr/bin/env bash
# install-npm-tool.sh PACKAGE VERSION COMMAND DIR installs the npm package PACKAGE@VERSION into
# DIR, checks that its COMMAND runs (COMMAND --version), and prints COMMAND's path. A finished
# install leaves a stamp file, so a second run only checks that the command still exists and
# returns at once; parallel runs wait for each other on a lock file. install-cdk.sh and
# install-asl-validator.sh pin what they install with it.
set -euo pipefail

pkg="$1" version="$2" cmd="$3" dir="$4"
stamp="${dir}/.installed-${pkg}-${version}"
bin="${dir}/node_modules/.bin/${cmd}"

die() {
	echo "install ${pkg}: $*" >&2
	exit 1
}

if [[ -f "$stamp" && -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

command -v node >/dev/null 2>&1 || die "node is not installed (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm is not installed (apt-get install npm)"

mkdir -p "$dir" || die "cannot create $dir"
exec 9>"${dir}/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9 || die "cannot lock ${dir}/.lock"
fi
if [[ -f "$stamp" && -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

echo "install ${pkg}: installing ${pkg}@${version} into ${dir}" >&2
# A package.json of our own keeps npm from walking up to an unrelated project.
[[ -f "${dir}/package.json" ]] || echo "{\"name\":\"warden-${pkg}\",\"private\":true}" >"${dir}/package.json"
npm install --no-audit --no-fund --loglevel=error --prefix "$dir" "${pkg}@${version}" >&2 ||
	die "npm install failed"

[[ -x "$bin" ]] || die "${cmd} missing after install: $bin"
"$bin" --version >/dev/null 2>&1 || die "${cmd} does not run: $bin --version failed"

touch "$stamp"
echo "$bin"
