#!/usr/bin/env bash
# install-rie.sh installs what functions/rietest runs the Lambda bootstraps with, and prints two lines:
#   rie=<path of aws-lambda-rie>
#   qemu=<path of qemu-aarch64-static, or nothing on an arm64 machine, which runs the bootstraps itself>
#
# aws-lambda-rie, the Lambda Runtime Interface Emulator (Apache-2.0), is built from a pinned commit
# into ${WARDEN_RIE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/rie/<version>}/bin through the Go
# module proxy; a finished build leaves a stamp file, so a second run returns at once (5 ms).
# qemu-aarch64-static, which runs the linux/arm64 bootstraps on another architecture, is Debian's
# qemu-user-static: installed with apt-get when it is missing (needs root; runs `apt-get update`
# first only if the install fails without it). Both cold, with an empty Go build cache: about 25 s
# on two cores. Parallel test processes wait for each other on a lock file. Override the version
# with RIE_VERSION and the go command with GO.
set -euo pipefail

version="${RIE_VERSION:-v0.0.0-20261030222936-bef5c4ba774d}"
module="github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
dir="${WARDEN_RIE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/rie/${version}}"
bin="${dir}/bin/aws-lambda-rie"
stamp="${dir}/.installed-${version}"

die() {
	echo "install-rie: $*" >&2
	exit 1
}

# need_qemu: the bootstraps are linux/arm64; only another architecture needs the emulator.
need_qemu() {
	case "$(uname -m)" in
	aarch64 | arm64) return 1 ;;
	*) return 0 ;;
	esac
}

qemu_path() {
	command -v qemu-aarch64-static 2>/dev/null || { [[ -x /usr/bin/qemu-aarch64-static ]] && echo /usr/bin/qemu-aarch64-static; } || true
}

# ready: the emulator is built (its stamp is there; it is not run here: without flags it would
# start listening) and qemu is there if needed.
ready() {
	[[ -f "$stamp" && -x "$bin" ]] || return 1
	! need_qemu || [[ -n "$(qemu_path)" ]]
}

report() {
	echo "rie=${bin}"
	if need_qemu; then echo "qemu=$(qemu_path)"; else echo "qemu="; fi
}

if ready; then
	report
	exit 0
fi

mkdir -p "$dir" || die "cannot create $dir"
# A lock keeps parallel test processes from installing at the same time.
exec 9>"${dir}/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9 || die "cannot lock ${dir}/.lock"
fi
if ready; then
	report
	exit 0
fi

if [[ ! -f "$stamp" || ! -x "$bin" ]]; then
	go="${GO:-}"
	if [[ -z "$go" ]]; then
		go="$(command -v go || true)"
		[[ -n "$go" ]] || { [[ -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go; }
	fi
	[[ -n "$go" && -x "$go" ]] || die "no go command on PATH (nor /usr/local/go/bin/go); set GO=/path/to/go"
	echo "install-rie: building ${module}@${version} into ${dir}/bin (once per machine)" >&2
	rm -f "$stamp"
	log="${dir}/build.log"
	# Built outside any module, so that the caller's go.mod, go.work and GOFLAGS play no part.
	if ! (cd "$dir" && env -u GOFLAGS GOWORK=off GO111MODULE=on GOBIN="${dir}/bin" CGO_ENABLED=0 \
		"$go" install -trimpath "${module}@${version}") >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "go install ${module}@${version} failed (full log: ${log})"
	fi
	[[ -x "$bin" ]] || die "the build left no binary at $bin"
	touch "$stamp"
fi

if need_qemu && [[ -z "$(qemu_path)" ]]; then
	command -v apt-get >/dev/null 2>&1 ||
		die "qemu-aarch64-static is missing and there is no apt-get: install QEMU's user-mode emulator for aarch64"
	[[ "$(id -u)" == 0 ]] ||
		die "qemu-aarch64-static is missing: run 'sudo apt-get install qemu-user-static' (this script installs it only as root)"
	echo "install-rie: installing Debian's qemu-user-static (once per machine)" >&2
	log="${dir}/apt.log"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends qemu-user-static >"$log" 2>&1; then
		# A fresh machine may have no package lists yet.
		apt-get update >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update failed (full log: ${log})"; }
		apt-get install -y --no-install-recommends qemu-user-static >>"$log" 2>&1 ||
			{ tail -n 20 "$log" >&2; die "apt-get install qemu-user-static failed (full log: ${log})"; }
	fi
	[[ -n "$(qemu_path)" ]] || die "qemu-user-static is installed but qemu-aarch64-static is not on PATH"
fi

report
