#!/bin/sh
# cargo target runner used by `cargo lambda watch` (CARGO_TARGET_<triple>_RUNNER):
# `cargo run --bin NAME` execs "runner /path/to/NAME". Load the environment the
# deployer generated for that function from the stack's state dir, then exec it.
# cargo lambda watch has no per-function environment outside tracked Cargo.toml
# metadata, so this is how each function gets its own template variables.
binary="$1"
name=$(basename "$binary")
env_file="${LAKEOPS_STACK_FUNCTIONS_DIR:?LAKEOPS_STACK_FUNCTIONS_DIR is not set}/$name.env"
if [ -f "$env_file" ]; then
    set -a
    . "$env_file"
    set +a
else
    echo "lakeops local stack: no environment for function binary '$name' ($env_file); is it in template.yaml?" >&2
fi
exec "$@"
