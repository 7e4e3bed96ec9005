"""Pure logic of the call-count benchmark (bench/calls.py): classify the requests the
local stack logged, attribute them to the Lambda invocation that made them, add them up
per stage, check the targets and render the tables.

No I/O here; bench/calls_count_test.py tests it.

Inputs are the stack's request logs, as they come from
``/_lakeops/requests`` (AWS, moto), ``/_lakeops/invocations`` (Lambda invocations the
stack ran) and ``/_emulator/requests`` (Databricks emulator).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

# The functions' AWS SDK for Rust signs its user agent "aws-sdk-rust"; the launcher logs
# it as client "rust-sdk". Everything else (boto3 of this harness, moto's own Step
# Functions interpreter) is "other" and is not a call the functions make.
FUNCTION_CLIENT = "rust-sdk"

# OAuth token endpoints (account: /oidc/accounts/<id>/v1/token; workspace:
# /ws/<deployment>/oidc/v1/token) and OIDC discovery: authentication, not a change.
_AUTH_PATH = re.compile(r"(^|/)oidc(/accounts/[^/]+)?/(v1/token|\.well-known/[^/]+)$")

# Identifiers inside Databricks REST paths, replaced so that calls group by API.
_UUID = re.compile(r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?=/|$)")
_NUMBER = re.compile(r"/\d+(?=/|$)")
_WORKSPACE_PREFIX = re.compile(r"^/ws/[^/]+(?=/)")

# The label of an invocation whose event has no "stage" (lake-grants, network-sleep).
RUN = "run"
# The row of calls made while no invocation was running.
OUTSIDE = "(outside any invocation)"
# Label prefix of invocations of other functions that did not run inside the scenario's
# function (the stack's SQS pollers, S3 notifications): not counted in the total.
BACKGROUND = "(not part of the run)"


def databricks_kind(method: str, path: str) -> str:
    """"auth" (OAuth token or discovery), "mutating" (any other non-GET/HEAD) or "read"."""
    if _AUTH_PATH.search(path):
        return "auth"
    return "read" if method.upper() in ("GET", "HEAD") else "mutating"


def databricks_operation(method: str, path: str) -> str:
    """``METHOD /path`` with workspace, UUID and numeric ids replaced by placeholders."""
    path = _WORKSPACE_PREFIX.sub("/ws/{deployment}", path)
    path = _UUID.sub("/{uuid}", path)
    path = _NUMBER.sub("/{id}", path)
    return f"{method.upper()} {path}"


def aws_operation(request: dict[str, Any]) -> str:
    return f"{request.get('service')}:{request.get('operation')}"


@dataclass
class Invocation:
    seq: int
    function: str
    stage: str | None
    start: float
    end: float | None
    failed: bool | None

    @staticmethod
    def from_log(entry: dict[str, Any]) -> "Invocation":
        return Invocation(
            seq=int(entry["seq"]),
            function=str(entry["function"]),
            stage=entry.get("stage"),
            start=float(entry["start"]),
            end=None if entry.get("end") is None else float(entry["end"]),
            failed=entry.get("failed"),
        )

    def contains(self, instant: float) -> bool:
        return self.start <= instant and (self.end is None or instant <= self.end)


def innermost(invocations: list[Invocation], instant: float) -> Invocation | None:
    """The invocation running at ``instant`` that started last.

    Invocations nest, never interleave, in these scenarios: a provision stage calls
    RotateSecret, and the stack runs the rotation function's steps before RotateSecret
    returns. The innermost one is the function that was making calls at that moment.
    """
    best: Invocation | None = None
    for invocation in invocations:
        if invocation.contains(instant) and (best is None or invocation.start >= best.start):
            best = invocation
    return best


@dataclass
class Row:
    """The calls of one stage (or one nested function under a stage)."""

    label: str
    invocations: int = 0
    failed_invocations: int = 0
    aws_calls: int = 0
    aws_mutating: int = 0
    dbx_calls: int = 0
    dbx_mutating: int = 0
    dbx_auth: int = 0
    aws_operations: Counter = field(default_factory=Counter)
    dbx_operations: Counter = field(default_factory=Counter)
    mutating_operations: Counter = field(default_factory=Counter)
    aws_errors: int = 0
    dbx_errors: int = 0

    def add(self, other: "Row") -> None:
        self.invocations += other.invocations
        self.failed_invocations += other.failed_invocations
        self.aws_calls += other.aws_calls
        self.aws_mutating += other.aws_mutating
        self.dbx_calls += other.dbx_calls
        self.dbx_mutating += other.dbx_mutating
        self.dbx_auth += other.dbx_auth
        self.aws_operations.update(other.aws_operations)
        self.dbx_operations.update(other.dbx_operations)
        self.mutating_operations.update(other.mutating_operations)
        self.aws_errors += other.aws_errors
        self.dbx_errors += other.dbx_errors

    @property
    def mutating(self) -> int:
        return self.aws_mutating + self.dbx_mutating

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "invocations": self.invocations,
            "failed_invocations": self.failed_invocations,
            "aws": {
                "calls": self.aws_calls,
                "mutating": self.aws_mutating,
                "errors": self.aws_errors,
                "operations": dict(sorted(self.aws_operations.items())),
            },
            "databricks": {
                "calls": self.dbx_calls,
                "mutating": self.dbx_mutating,
                "auth": self.dbx_auth,
                "errors": self.dbx_errors,
                "operations": dict(sorted(self.dbx_operations.items())),
            },
            "mutating_operations": dict(sorted(self.mutating_operations.items())),
        }


@dataclass
class Tally:
    """A scenario's calls: one row per stage of its function, in order of first run; the
    total adds them up. ``background``: what other functions did meanwhile, not counted."""

    rows: list[Row]
    total: Row
    background: list[Row] = field(default_factory=list)

    def row(self, label: str) -> Row | None:
        return next((r for r in [*self.rows, *self.background] if r.label == label), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": [r.as_json() for r in self.rows],
            "total": self.total.as_json(),
            "background": [r.as_json() for r in self.background],
        }


def stage_label(invocation: Invocation) -> str:
    return invocation.stage or RUN


def tally(
    invocations: Iterable[dict[str, Any]],
    aws_requests: Iterable[dict[str, Any]],
    dbx_requests: Iterable[dict[str, Any]],
    root_function: str,
) -> Tally:
    """Add up a scenario's calls per stage of ``root_function``.

    - A request belongs to the innermost invocation running when it started (by the
      stack's clock: moto, the launcher and the emulator run on one machine).
    - Invocations of ``root_function`` are grouped by their event's ``stage`` (the Wait
      loop's repeated ``workspace_ready`` invocations add up in one row, and the row counts
      them). Invocations of other functions started while a root stage ran (the rotation
      that ``RotateSecret`` runs) get their own row, ``<stage> > <function>``.
    - AWS requests count only when the functions' SDK made them (client ``rust-sdk``).
      Every Databricks request counts: only the functions call the emulator while a
      scenario runs.
    - Calls made while no invocation ran go to the row ``(outside any invocation)``; it
      is shown only when it has calls, and counts in the total.
    - Invocations of other functions that started while no invocation of
      ``root_function`` ran (the stack's SQS pollers delivering S3 test notifications to
      catalog-ingest, say) are not part of the scenario: their rows, labelled
      ``(not part of the run) <function>``, go to ``background``, outside the total.
    """
    runs = sorted((Invocation.from_log(i) for i in invocations), key=lambda i: (i.start, i.seq))
    roots = [i for i in runs if i.function == root_function]
    rows: dict[str, Row] = {}

    def label_of(invocation: Invocation | None) -> str:
        if invocation is None:
            return OUTSIDE
        if invocation.function == root_function:
            return stage_label(invocation)
        parent = innermost(roots, invocation.start)
        if parent is None:
            return f"{BACKGROUND} {invocation.function}"
        return f"{stage_label(parent)} > {invocation.function}"

    def row(label: str) -> Row:
        if label not in rows:
            rows[label] = Row(label)
        return rows[label]

    for invocation in runs:
        r = row(label_of(invocation))
        r.invocations += 1
        r.failed_invocations += 1 if invocation.failed else 0

    for request in aws_requests:
        if request.get("client") != FUNCTION_CLIENT:
            continue
        r = row(label_of(innermost(runs, float(request["start"]))))
        operation = aws_operation(request)
        r.aws_calls += 1
        r.aws_operations[operation] += 1
        r.aws_errors += 1 if int(request.get("status") or 0) >= 400 else 0
        if request.get("mutating"):
            r.aws_mutating += 1
            r.mutating_operations[operation] += 1

    for request in dbx_requests:
        r = row(label_of(innermost(runs, float(request["start"]))))
        method, path = str(request["method"]), str(request["path"])
        operation = databricks_operation(method, path)
        kind = databricks_kind(method, path)
        r.dbx_calls += 1
        r.dbx_operations[operation] += 1
        r.dbx_errors += 1 if int(request.get("status") or 0) >= 400 else 0
        if kind == "auth":
            r.dbx_auth += 1
        elif kind == "mutating":
            r.dbx_mutating += 1
            r.mutating_operations[operation] += 1

    counted = [r for r in rows.values() if not r.label.startswith(BACKGROUND)]
    counted = [r for r in counted if r.label != OUTSIDE or r.aws_calls or r.dbx_calls]
    total = Row("total")
    for r in counted:
        total.add(r)
    background = [r for r in rows.values() if r.label.startswith(BACKGROUND)]
    return Tally(counted, total, background)


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------


def operations_text(counter: Counter, limit: int = 12) -> str:
    """``a ×2, b`` — most frequent first, then by name; the rest as ``+N more``."""
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"`{name}`" + (f" ×{count}" if count > 1 else "") for name, count in items[:limit]]
    rest = sum(count for _, count in items[limit:])
    if rest:
        parts.append(f"+{rest} more")
    return ", ".join(parts) if parts else "—"


def invocations_text(row: Row) -> str:
    text = str(row.invocations)
    if row.failed_invocations:
        text += f" ({row.failed_invocations} failed)"
    return text


def calls_text(calls: int, mutating: int) -> str:
    return f"{calls} ({mutating})"


def background_text(tally_: Tally) -> str:
    """One sentence on the invocations left out of the total, or ""."""
    if not tally_.background:
        return ""
    parts = [
        f"{r.label[len(BACKGROUND) + 1:]} ×{r.invocations} ({r.aws_calls} AWS, {r.dbx_calls} Databricks calls)"
        for r in tally_.background
    ]
    return "Not counted, run by the stack meanwhile outside the scenario's invocations: " + ", ".join(parts) + "."


def table(tally_: Tally) -> list[str]:
    lines = [
        "| stage | invocations | AWS calls (mutating) | Databricks calls (mutating) | Databricks token requests | mutating operations |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for r in [*tally_.rows, tally_.total]:
        label = f"**{r.label}**" if r is tally_.total else f"`{r.label}`"
        lines.append(
            f"| {label} | {invocations_text(r)} | {calls_text(r.aws_calls, r.aws_mutating)} "
            f"| {calls_text(r.dbx_calls, r.dbx_mutating)} | {r.dbx_auth} | {operations_text(r.mutating_operations)} |"
        )
    return lines


@dataclass
class Target:
    """A target checked by the harness: ``scenario``/``run`` makes at most ``limit`` mutating calls."""

    name: str
    scenario: str
    run: str
    limit: int = 0
    actual: int | None = None
    operations: Counter = field(default_factory=Counter)
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.actual is not None and self.actual <= self.limit

    def check(self, tally_: Tally) -> None:
        self.actual = tally_.total.mutating
        self.operations = Counter(tally_.total.mutating_operations)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scenario": self.scenario,
            "run": self.run,
            "limit": self.limit,
            "actual": self.actual,
            "passed": self.passed,
            "mutating_operations": dict(sorted(self.operations.items())),
            "note": self.note,
        }


def targets_table(targets: list[Target]) -> list[str]:
    lines = ["| target | mutating calls | result | mutating operations |", "|---|--:|:-:|---|"]
    for t in targets:
        actual = "not measured" if t.actual is None else str(t.actual)
        result = "pass" if t.passed else "**FAIL**"
        ops = operations_text(t.operations) if t.actual else "—"
        note = f" {t.note}" if t.note else ""
        lines.append(f"| {t.name} (≤ {t.limit}) | {actual} | {result} | {ops}{note} |")
    return lines


def replace_block(document: str, block: str, begin: str, end: str, section: str, before: str | None) -> str:
    """Put ``block`` between the ``begin``/``end`` marker lines of ``document``.

    Without the markers, append ``section`` (which must contain both markers) before
    the heading line ``before`` when it exists, else at the end. Text outside the
    markers is never changed.
    """
    start = document.find(begin)
    if start != -1:
        start_line = document.find("\n", start)
        stop = document.find(end, start_line)
        if start_line == -1 or stop == -1:
            raise ValueError(f"{begin!r} found without {end!r} after it")
        return document[: start_line + 1] + block.rstrip("\n") + "\n\n" + document[stop:]
    if begin not in section or end not in section:
        raise ValueError("the new section must contain both markers")
    filled = replace_block(section, block, begin, end, section, None)
    if before:
        at = document.find("\n" + before + "\n")
        if at != -1:
            return document[: at + 1] + filled.rstrip("\n") + "\n\n" + document[at + 1 :]
    return document.rstrip("\n") + "\n\n" + filled.rstrip("\n") + "\n"
