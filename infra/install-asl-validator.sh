#!/usr/bin/env bash
# install-asl-validator.sh installs a pinned version of asl-validator (npm; the Amazon States
# Language validator, MIT), which the infra tests run on the approvals state machine's definition,
# and prints the path of its command (install-npm-tool.sh).
#
# The directory is ${WARDEN_ASL_VALIDATOR_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/asl-validator/<version>}.
# Override the version with ASL_VALIDATOR_VERSION.
set -euo pipefail

version="${ASL_VALIDATOR_VERSION:-4.0.0}"
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-npm-tool.sh" asl-validator "$version" asl-validator \
	"${WARDEN_ASL_VALIDATOR_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/asl-validator/${version}}"
