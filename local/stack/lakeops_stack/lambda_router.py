"""Route a Lambda invocation for a deployed function to `cargo lambda watch`.

The deployer writes ``functions/routes.json`` (deployed function name -> cargo binary).
Every invocation (Invoke API, Step Functions, SQS, S3, Secrets Manager rotation)
ends up in :func:`invoke`, which POSTs the event to
``http://127.0.0.1:{lambda_port}/2015-03-31/functions/{binary}/invocations``.

Result contract (what AWS returns): a successful call gives the function's payload;
a failed one gives ``FunctionError: Unhandled`` and a ``{"errorType", "errorMessage"}``
payload, so Step Functions Retry/Catch on errorType work.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InvokeResult:
    payload: bytes
    function_error: str | None  # None on success, "Unhandled" otherwise

    @property
    def failed(self) -> bool:
        return self.function_error is not None


def error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def normalise_error_payload(body: bytes) -> bytes:
    """cargo lambda watch passes on what the runtime posted; make sure it has errorType/errorMessage."""
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("errorType"), str):
        parsed.setdefault("errorMessage", "")
        return json.dumps(parsed).encode()
    text = body.decode("utf-8", "replace").strip() or "function failed without an error body"
    return error_payload("Runtime.Unknown", text)


class Routes:
    """Deployed function name -> {binary, timeout}; reloaded when the deployer rewrites the file."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._routes: dict[str, dict] = {}

    def lookup(self, function_name: str) -> dict | None:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                return None
            if mtime != self._mtime:
                self._routes = json.loads(self.path.read_text()).get("functions", {})
                self._mtime = mtime
            return self._routes.get(function_name)


class LambdaRouter:
    def __init__(self, lambda_port: int, routes_file: Path, startup_slack_seconds: float = 120.0):
        self.lambda_port = lambda_port
        self.routes = Routes(routes_file)
        # The first invocation of a function starts its process (`cargo run` of a pre-built binary).
        self.startup_slack_seconds = startup_slack_seconds

    def invoke(self, function_name: str, event: bytes, timeout_seconds: float | None = None) -> InvokeResult:
        route = self.routes.lookup(function_name)
        if route is None:
            return InvokeResult(
                error_payload(
                    "Lakeops.LocalStack.NoRoute",
                    f"function {function_name!r} has no cargo-lambda binary in the local stack; "
                    "deploy it from template.yaml (Metadata.BuildProperties.Binary)",
                ),
                "Unhandled",
            )
        binary = route["binary"]
        timeout = float(timeout_seconds or route.get("timeout") or 3) + self.startup_slack_seconds
        url = f"http://127.0.0.1:{self.lambda_port}/2015-03-31/functions/{binary}/invocations"
        request = urllib.request.Request(
            url, data=event or b"{}", method="POST", headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return InvokeResult(response.read(), None)
        except urllib.error.HTTPError as failure:
            body = failure.read()
            if failure.code == 404:
                return InvokeResult(
                    error_payload(
                        "Lakeops.LocalStack.UnknownBinary",
                        f"cargo lambda watch has no binary {binary!r} (function {function_name}): "
                        f"{body.decode('utf-8', 'replace')[:500]}",
                    ),
                    "Unhandled",
                )
            return InvokeResult(normalise_error_payload(body), "Unhandled")
        except TimeoutError:
            return InvokeResult(
                error_payload("Sandbox.Timedout", f"{function_name}: task timed out after {timeout:.0f} seconds"),
                "Unhandled",
            )
        except urllib.error.URLError as failure:
            return InvokeResult(
                error_payload(
                    "Lakeops.LocalStack.LambdaUnavailable",
                    f"cargo lambda watch at 127.0.0.1:{self.lambda_port} did not answer: {failure.reason}",
                ),
                "Unhandled",
            )
