#!/usr/bin/env bash
# Builds the Databricks API emulator, starts it on a free port, runs the conformance
# suite (tests/conformance, driven through the official databricks-sdk) against it,
# and stops the emulator on exit, whatever happens.
#
#   LAKEOPS_VENV       Python venv with databricks-sdk and pytest (default: the repository's .venv)
#   CARGO_TARGET_DIR   cargo target directory (default: cargo's own default)
#   extra arguments    passed to pytest, e.g. local/conformance.sh -k clusters
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LAKEOPS_VENV:-$repo_root/.venv}"
python="$venv/bin/python"
if [[ ! -x "$python" ]]; then
  echo "conformance.sh: no Python at $python; set LAKEOPS_VENV to a venv with databricks-sdk and pytest" >&2
  exit 2
fi

cd "$repo_root"
cargo build --quiet -p databricks-emulator
target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
binary="$target_dir/debug/databricks-emulator"

workdir="$(mktemp -d)"
emulator_pid=""
cleanup() {
  if [[ -n "$emulator_pid" ]] && kill -0 "$emulator_pid" 2>/dev/null; then
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

"$binary" --port 0 --provisioning-seconds 1 --cluster-seconds 1 --run-seconds 1 \
  >"$workdir/stdout" 2>"$workdir/stderr" &
emulator_pid=$!

url=""
for _ in $(seq 1 100); do
  if ! kill -0 "$emulator_pid" 2>/dev/null; then
    echo "conformance.sh: the emulator exited during start:" >&2
    cat "$workdir/stderr" >&2
    exit 1
  fi
  line="$(head -n 1 "$workdir/stdout" 2>/dev/null || true)"
  if [[ "$line" == "databricks-emulator listening on "* ]]; then
    url="${line##* }"
    break
  fi
  sleep 0.1
done
if [[ -z "$url" ]]; then
  echo "conformance.sh: the emulator did not report its address within 10 s" >&2
  exit 1
fi
echo "conformance.sh: emulator at $url (pid $emulator_pid)"

DATABRICKS_EMULATOR_URL="$url" "$python" -m pytest -q -p no:cacheprovider "$repo_root/tests/conformance" "$@"
