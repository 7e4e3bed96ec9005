"""lakeops local stack: moto (all AWS APIs) + cargo lambda watch (functions) + Databricks emulator.

Entry point: ``local/stack.sh`` (``python -m lakeops_stack``). See local/README.md.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
