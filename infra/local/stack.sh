#!/usr/bin/env bash
# The local AWS stack: moto_server on a free loopback port.
#
#   source infra/local/stack.sh && stack_up     # starts moto, exports AWS_* vars,
#                                               # stops it when the shell exits
#   infra/local/with-stack.sh CMD ARGS...       # the same around one command
#
# Exports: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION, AWS_DEFAULT_REGION, HUBSYNC_MOTO_PID. Dummy credentials only.

_stack_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

stack_free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

stack_down() {
  if [ -n "${HUBSYNC_MOTO_PID:-}" ] && kill -0 "$HUBSYNC_MOTO_PID" 2>/dev/null; then
    kill "$HUBSYNC_MOTO_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$HUBSYNC_MOTO_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$HUBSYNC_MOTO_PID" 2>/dev/null || true
  fi
  unset HUBSYNC_MOTO_PID
}

stack_up() {
  bash "$_stack_root/infra/local/setup.sh" || return 1
  local venv="${HUBSYNC_VENV:-$_stack_root/.venv}"
  local logdir="$_stack_root/.local"
  mkdir -p "$logdir"
  local port tries=0
  while :; do
    port="$(stack_free_port)"
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logdir/moto.log" 2>&1 &
    HUBSYNC_MOTO_PID=$!
    export HUBSYNC_MOTO_PID
    # Wait (up to 30 s) until moto answers; retry on another port if it died
    # (a port race with another process).
    local waited=0
    while [ $waited -lt 300 ]; do
      if ! kill -0 "$HUBSYNC_MOTO_PID" 2>/dev/null; then break; fi
      if python3 - "$port" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1).read()
PY
      then
        export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
        export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
        export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
        trap stack_down EXIT
        echo "stack: moto_server on $AWS_ENDPOINT_URL (pid $HUBSYNC_MOTO_PID, log .local/moto.log)" >&2
        return 0
      fi
      sleep 0.1
      waited=$((waited + 1))
    done
    stack_down
    tries=$((tries + 1))
    if [ $tries -ge 3 ]; then
      echo "stack: moto_server did not start; see $logdir/moto.log" >&2
      return 1
    fi
  done
}
