"""Translate a SAM template to CloudFormation offline: `python -m lakeops_stack.sam_translate IN OUT`.

The same translation the local stack deploys (prepare_sam + aws-sam-translator), with the
template's parameter defaults and a placeholder account; no AWS call is made. `./dev test`
runs checkov on the result too, because checkov's CloudFormation checks see the resources
SAM generates (roles, Lambda functions, state machines) only there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lakeops_stack.deploy import load_template, prepare_sam, translate

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def translate_file(template_path: Path) -> dict:
    template = load_template(template_path)
    parameters = {name: str(spec["Default"]) for name, spec in (template.get("Parameters") or {}).items() if "Default" in spec}
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws", "AWS::StackName": "lakeops"}
    return translate(prepare_sam(template, template_path.parent), {**parameters, **pseudo}, None, REGION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    args.output.write_text(json.dumps(translate_file(args.template), indent=1) + "\n")


if __name__ == "__main__":
    main()
