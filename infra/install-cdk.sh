#!/usr/bin/env bash
# install-cdk.sh installs a pinned version of the AWS CDK CLI (npm aws-cdk) for `make deploy`
# and prints the path of its cdk command (install-npm-tool.sh).
#
# The directory is ${WARDEN_CDK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/cdk/<version>}.
# Override the version with CDK_CLI_VERSION.
set -euo pipefail

version="${CDK_CLI_VERSION:-2.1148.1}"
# No version check, no telemetry when install-npm-tool.sh runs cdk --version.
export CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-npm-tool.sh" aws-cdk "$version" cdk \
	"${WARDEN_CDK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/cdk/${version}}"
