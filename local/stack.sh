#!/usr/bin/env bash
# lakeops local stack: moto (all AWS APIs) + cargo lambda watch (functions) + Databricks emulator.
#   local/stack.sh up [--aws-port 4566] [--lambda-port 9000] [--databricks-port 8900] [--state-dir DIR] [--parent-pid PID]
#   local/stack.sh down | status | deploy | outputs | fire-schedule NAME | logs [-f]
# See local/README.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv="${LAKEOPS_VENV:-$repo/.venv}"
if [ ! -x "$venv/bin/python" ]; then
    echo "local-stack: no Python venv at $venv (set LAKEOPS_VENV, or create it: python3 -m venv $venv && $venv/bin/pip install -r $here/requirements.txt)" >&2
    exit 1
fi
export LAKEOPS_VENV="$venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lakeops/target}"
export PATH="$venv/bin:$HOME/.cargo/bin:$PATH"
export PYTHONPATH="$here/stack${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/python" -m lakeops_stack "$@"
