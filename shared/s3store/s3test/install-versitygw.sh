#!/usr/bin/env bash
# install-versitygw.sh builds a pinned versitygw (the Versity S3 gateway, Apache-2.0), the S3 server
# with Object Lock that the tests of shared/s3store run against, and prints the path of its binary.
#
# The binary goes to ${WARDEN_VERSITYGW_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/versitygw/<version>}/bin.
# A finished build leaves a stamp file next to it, so a second run only checks that the binary
# still runs and returns at once. A cold build downloads the module and its dependencies through
# the Go module proxy and compiles them: 1.5 to 3 minutes on two cores (about 1.5 with the modules
# already in the module cache). Parallel test processes
# wait for each other on a lock file instead of building twice. Override the version with
# VERSITYGW_VERSION and the go command with GO.
set -euo pipefail

version="${VERSITYGW_VERSION:-v1.8.0}"
dir="${WARDEN_VERSITYGW_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/versitygw/${version}}"
bin="${dir}/bin/versitygw"
stamp="${dir}/.installed-${version}"

die() {
	echo "install-versitygw: $*" >&2
	exit 1
}

ready() {
	[[ -f "$stamp" && -x "$bin" ]] && "$bin" --version >/dev/null 2>&1
}

if ready; then
	echo "$bin"
	exit 0
fi

go="${GO:-}"
if [[ -z "$go" ]]; then
	go="$(command -v go || true)"
	[[ -n "$go" ]] || { [[ -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go; }
fi
[[ -n "$go" && -x "$go" ]] || die "no go command on PATH (nor /usr/local/go/bin/go); set GO=/path/to/go"

mkdir -p "$dir" || die "cannot create $dir"
# A lock keeps parallel test processes from building into the same directory at once.
exec 9>"${dir}/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9 || die "cannot lock ${dir}/.lock"
fi
if ready; then
	echo "$bin"
	exit 0
fi

echo "install-versitygw: building github.com/versity/versitygw/cmd/versitygw@${version} into ${dir}/bin (1.5 to 3 minutes, once per machine)" >&2
rm -f "$stamp"
# Built outside any module, so that the caller's go.mod, go.work and GOFLAGS (-mod=...) play no part.
log="${dir}/build.log"
if ! (cd "$dir" && env -u GOFLAGS GOWORK=off GO111MODULE=on GOBIN="${dir}/bin" CGO_ENABLED=0 \
	"$go" install -trimpath "github.com/versity/versitygw/cmd/versitygw@${version}") >"$log" 2>&1; then
	tail -n 30 "$log" >&2
	die "go install github.com/versity/versitygw/cmd/versitygw@${version} failed (full log: ${log})"
fi
[[ -x "$bin" ]] || die "the build left no binary at $bin"
"$bin" --version >/dev/null 2>&1 || die "$bin does not run: $bin --version failed"

touch "$stamp"
echo "$bin"
