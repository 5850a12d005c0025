#!/usr/bin/env bash
# Runs one command with the local AWS stack (moto_server) up, then stops it.
set -euo pipefail
# shellcheck source=infra/local/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
stack_up
set +e
"$@"
rc=$?
stack_down
exit $rc
