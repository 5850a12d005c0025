#!/usr/bin/env bash
# Release builds of every function for arm64, as `sam build` makes them
# (cargo-lambda with zig, both from ./.venv; the workspace's release profile:
# fat LTO, one codegen unit, symbols stripped), then each binary's size
# against the 8 MB budget (8,000,000 bytes). Exits non-zero when one is over.
#
# Cold about 15 minutes on 2 cores; `make sizes` runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/local/setup.sh >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true

functions=(webhook-intake record-upsert reconcile oauth-callback admin-api change-events journal-reader)
packages=()
for f in "${functions[@]}"; do packages+=(--package "$f"); done
cargo lambda build --release --arm64 "${packages[@]}" >&2

budget=8000000
over=0
printf '%-16s %12s %9s\n' function bytes MiB
for f in "${functions[@]}"; do
  bin="target/lambda/$f/bootstrap"
  size=$(stat -c %s "$bin")
  mark=""
  if [ "$size" -gt "$budget" ]; then mark="  over 8 MB"; over=1; fi
  awk -v f="$f" -v s="$size" -v m="$mark" 'BEGIN { printf "%-16s %12d %9.2f%s\n", f, s, s / 1048576, m }'
done
exit "$over"
