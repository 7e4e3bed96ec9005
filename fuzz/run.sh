#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz, nightly). See fuzz/README.md.
#
#   fuzz/run.sh [target] [seconds]   one target, or all of them, for `seconds`
#                                    each (default 60)
#   fuzz/run.sh --smoke              what ./dev test runs: every target for
#                                    10 s; a clear skip line without nightly
#
# The build is sanitizer-coverage instrumented, without AddressSanitizer
# (the code is safe Rust; ASan would halve the executions for nothing) and
# with debug assertions and overflow checks on. It has its own target dir, so
# it never invalidates the stable build.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ_DIR"
export CARGO_TARGET_DIR="${LAKEOPS_FUZZ_TARGET_DIR:-$HOME/.cache/lakeops/target-fuzz}"
export PATH="$HOME/.cargo/bin:$PATH"
BUILD_FLAGS=(--sanitizer none --codegen-units 16)
TARGETS=(s3_key text_infer gzip_prefix parquet_footer lake_spec grants_policy platform_spec databricks dr_spec view_rewrite)

smoke=false
if [ "${1:-}" = "--smoke" ]; then
  smoke=true
  shift
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  if $smoke; then
    echo "skipped: fuzzing needs the nightly toolchain (rustup toolchain install nightly)"
    exit 0
  fi
  echo "error: fuzzing needs the nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if $smoke; then
  selected=("${TARGETS[@]}")
  seconds=10
else
  if [ -n "${1:-}" ]; then
    printf '%s\n' "${TARGETS[@]}" | grep -qx "$1" \
      || { echo "error: unknown fuzz target \`$1\` (one of: ${TARGETS[*]})" >&2; exit 2; }
    selected=("$1")
  else
    selected=("${TARGETS[@]}")
  fi
  seconds="${2:-60}"
fi
case "$seconds" in
  ''|*[!0-9]*) echo "error: seconds must be a whole number, got \`$seconds\`" >&2; exit 2 ;;
esac

cargo +nightly fuzz build "${BUILD_FLAGS[@]}"
for target in "${selected[@]}"; do
  echo "--- fuzz target $target for ${seconds}s"
  mkdir -p "corpus/$target"
  # New inputs go to corpus/ (not committed); seeds/ is the committed seed corpus.
  log="$(mktemp)"
  if cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    rm -f "$log"
  else
    tail -n 40 "$log"
    echo "fuzz target $target FAILED (log: $log; the input is in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
done
