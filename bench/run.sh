#!/usr/bin/env bash
# Benchmarks of the deployed Lambda packages: cold init, peak RSS at init and
# zip size of the six functions (see BENCHMARKS.md). Run through `./dev bench`.
# Not part of `cargo test` or CI: it needs a quiet machine and a release build.
#
#   ./dev bench [--runs N] [--skip-build] [--functions a,b] [--no-write]
#
# The release build (LTO, one codegen unit) goes to its own target directory,
# next to the usual one, so it never waits on or blocks the shared build lock:
# LAKEOPS_BENCH_TARGET_DIR, default "$CARGO_TARGET_DIR-bench".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

runs=30
build=1
write=1
functions="provision,catalog-setup,catalog-ingest,lake-grants,rotate-credentials,network-sleep"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --skip-build) build=0; shift ;;
    --functions) functions="$2"; shift 2 ;;
    --no-write) write=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

venv="${LAKEOPS_VENV:-$ROOT/.venv}"
export PATH="$venv/bin:$HOME/.cargo/bin:$PATH"
target="${LAKEOPS_BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}-bench}"
mkdir -p "$target"

command -v cargo-lambda >/dev/null || { echo "cargo-lambda is missing: run ./dev setup" >&2; exit 1; }

if [ "$build" = 1 ]; then
  packages=()
  IFS=',' read -ra names <<<"$functions"
  for name in "${names[@]}"; do packages+=(-p "$name"); done
  echo "==> cargo lambda build --release --x86-64 --output-format zip (${#names[@]} functions, CARGO_TARGET_DIR=$target)" >&2
  # As deployed: template.yaml says provided.al2023 on x86_64, BuildMethod
  # rust-cargolambda; the workspace release profile (lto, codegen-units=1,
  # panic=abort, strip) applies. nice: the machine may be shared.
  CARGO_TARGET_DIR="$target" nice -n 19 cargo lambda build --release --x86-64 \
    --output-format zip "${packages[@]}"
fi

# The harness floor: the smallest process that asks the Runtime API for an event.
floor="$target/bench-floor"
if [ ! -x "$floor" ] || [ bench/floor.rs -nt "$floor" ]; then
  rustc -O --edition 2021 -C panic=abort -C strip=symbols bench/floor.rs -o "$floor"
fi

args=(--lambda-dir "$target/lambda" --floor "$floor" --runs "$runs" --functions "$functions"
      --json "$target/bench-results.json")
if [ "$write" = 1 ]; then args+=(--markdown "$ROOT/BENCHMARKS.md"); fi
echo "==> measuring ($runs runs per function; raw samples in $target/bench-results.json)" >&2
# Measure above the priority of background builds when allowed (root), so that
# a compiler on a shared machine disturbs the figures less; the runs take a few
# seconds. Without the permission, measure at normal priority.
if nice -n -10 true 2>/dev/null; then
  exec nice -n -10 python3 bench/lambda_init.py "${args[@]}"
fi
exec python3 bench/lambda_init.py "${args[@]}"
