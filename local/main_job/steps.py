"""The steps of the main job, in the order a platform is built.

Each step is (title, function binary, run(job) -> one-line detail). The
per-function steps live in their own modules.
"""
from __future__ import annotations

ALL: list = []


def _load() -> None:
    import importlib
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for module in ("provision", "catalog", "grants", "rotation", "network", "dr"):
        if (here / f"step_{module}.py").exists():
            ALL.extend(importlib.import_module(f"main_job.step_{module}").STEPS)


_load()
