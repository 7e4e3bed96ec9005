#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md, run through `./dev bench`. Not part of
# `cargo test` or CI: they need a release build and a quiet machine.
#
#   ./dev bench [--only init,first-event,ingest,calls] [--runs N] [--skip-build]
#               [--functions a,b] [--objects N] [--no-write]
#
#   init         cold init, peak RSS at init and zip size of every function
#                (bench/lambda_init.py, a local Lambda Runtime API)
#   first-event  the first representative event of every function against the
#                local stack (bench/first_event.py)
#   ingest       catalog-ingest on 10,000 objects: objects/s, Glue calls against
#                the minimum, ranged reads, peak RSS (bench/ingest.py)
#   calls        AWS and Databricks calls of provision (per stage, first apply and
#                re-run), lake-grants (200 grants) and network-sleep (3 gateways)
#                on the local stack (bench/calls.py)
#
# Every benchmark runs (even after one misses a target); the exit status is
# non-zero when any missed one. The release build (LTO, one codegen unit) goes to
# its own target directory, so it never waits on or blocks the shared build lock:
# LAKEOPS_BENCH_TARGET_DIR, default "$CARGO_TARGET_DIR-bench".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

runs=30
objects=10000
only="init,first-event,ingest,calls"
build=1
write=1
functions="provision,catalog-setup,catalog-ingest,lake-grants,rotate-credentials,network-sleep"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --skip-build) build=0; shift ;;
    --functions) functions="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --objects) objects="$2"; shift 2 ;;
    --no-write) write=0; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

venv="${LAKEOPS_VENV:-$ROOT/.venv}"
export PATH="$venv/bin:$HOME/.cargo/bin:$PATH"
target="${LAKEOPS_BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}-bench}"
mkdir -p "$target"

command -v cargo-lambda >/dev/null || { echo "cargo-lambda is missing: run ./dev setup" >&2; exit 1; }

wants() { [[ ",$only," == *",$1,"* ]]; }
for part in ${only//,/ }; do
  case "$part" in init|first-event|ingest|calls) ;; *) echo "unknown benchmark $part (--only)" >&2; exit 2 ;; esac
done
# calls runs the stack's own (debug) builds: call counts do not depend on the profile.
if ! wants init && ! wants first-event && ! wants ingest; then build=0; fi
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

markdown=()
if [ "$write" = 1 ]; then markdown=(--markdown "$ROOT/BENCHMARKS.md"); fi
# Measure above the priority of background builds when allowed (root), so that a
# compiler on a shared machine disturbs the figures less. Without the permission,
# measure at normal priority.
priority=()
if nice -n -10 true 2>/dev/null; then priority=(nice -n -10); fi
python="$venv/bin/python"
[ -x "$python" ] || python=python3
failed=()

if wants init; then
  # The harness floor: the smallest process that asks the Runtime API for an event.
  floor="$target/bench-floor"
  if [ ! -x "$floor" ] || [ bench/floor.rs -nt "$floor" ]; then
    rustc -O --edition 2021 -C panic=abort -C strip=symbols bench/floor.rs -o "$floor"
  fi
  echo "==> init: $runs runs per function (raw samples in $target/bench-results.json)" >&2
  "${priority[@]}" python3 bench/lambda_init.py --lambda-dir "$target/lambda" --floor "$floor" --runs "$runs" \
    --functions "$functions" --json "$target/bench-results.json" "${markdown[@]}" || failed+=(init)
fi
if wants first-event; then
  echo "==> first-event: the first event of every function against a private local stack" >&2
  first_runs=$(( runs < 10 ? 10 : runs ))
  [ "$first_runs" -gt 15 ] && first_runs=15  # each run starts a process and does real work
  "${priority[@]}" "$python" bench/first_event.py --lambda-dir "$target/lambda" --runs "$first_runs" \
    --json "$target/bench-first-event.json" "${markdown[@]}" || failed+=(first-event)
fi
if wants ingest; then
  echo "==> ingest: catalog-ingest on $objects objects" >&2
  "${priority[@]}" "$python" bench/ingest.py --lambda-dir "$target/lambda" --objects "$objects" \
    --json "$target/bench-ingest.json" "${markdown[@]}" || failed+=(ingest)
fi
if wants calls; then
  echo "==> calls: provision, lake-grants and network-sleep on a private local stack" >&2
  "$python" bench/calls.py --json "$target/bench-calls.json" "${markdown[@]}" || failed+=(calls)
fi

if [ "${#failed[@]}" -gt 0 ]; then
  echo "==> missed a target or failed: ${failed[*]} (see the output above and BENCHMARKS.md)" >&2
  exit 1
fi
echo "==> every benchmark met its targets" >&2
