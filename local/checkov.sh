#!/usr/bin/env bash
# checkov on template.yaml and on its SAM translation (the roles, functions and state machines
# SAM generates are checked only there). Findings that do not apply are skipped on their
# resource in template.yaml (Metadata.checkov.skip, with the reason); nothing is skipped here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
: "${LAKEOPS_VENV:?}" "${LAKEOPS_CHECKOV_VENV:?}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd local/stack && "$LAKEOPS_VENV/bin/python" -m lakeops_stack.sam_translate "$ROOT/template.yaml" "$work/translated.json")

# Offline: no guideline download from the vendor's API.
export BC_SKIP_MAPPING=TRUE
status=0
for template in template.yaml "$work/translated.json"; do
  echo "checkov: $( [ "$template" = template.yaml ] && echo template.yaml || echo 'template.yaml after the SAM transform' )"
  "$LAKEOPS_CHECKOV_VENV/bin/checkov" --framework cloudformation --quiet --compact --skip-download --file "$template" || status=1
done
exit "$status"
