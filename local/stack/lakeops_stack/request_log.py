"""What the local stack served: AWS API requests and Lambda invocations, for benchmarks.

Benchmarks count the AWS calls a function makes (per Step Functions stage, per batch, per
run) by reading this log from the moto server it runs in:

- ``GET /_lakeops/requests?since=N``: every AWS API request moto answered, as
  ``{"next": M, "requests": [{seq, service, operation, method, path, range, status, start,
  end, mutating, client}]}``;
- ``GET /_lakeops/invocations?since=N``: every Lambda invocation the stack ran (Invoke API,
  Step Functions, SQS, S3, rotation), as ``{seq, function, stage, start, end, failed}``;
  ``stage`` is the event's ``"stage"`` or rotation ``"Step"`` when it has one;
- ``POST /_lakeops/requests/reset``: forget both.

Times are epoch seconds, so they line up with the Databricks emulator's
``/_emulator/requests``. Only what identifies the call is kept — never headers or bodies
beyond the S3 ``Range`` header and the Query-protocol ``Action``, so no secret lands here.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import urllib.parse
from collections import deque
from typing import Any, Callable, Iterable

CAPACITY = 500_000

# Read-only operations of the JSON and Query protocols (and S3's GET/HEAD); anything else
# changes something. Classified by name, as AWS names its read APIs.
READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet", "Search", "Query", "Scan", "Lookup", "Select", "Receive")

# Calls that change nothing although their names do not say "read".
READ_OPERATIONS = frozenset({"AssumeRole", "AssumeRoleWithWebIdentity", "Decrypt", "SimulatePrincipalPolicy"})

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def is_mutating(operation: str, method: str) -> bool:
    if " " in operation:  # an unnamed REST call: decide by method
        return method not in ("GET", "HEAD")
    return not (operation.startswith(READ_PREFIXES) or operation in READ_OPERATIONS)


def s3_operation(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    """The S3 API name of a path-style request (the SDK uses path style under an endpoint override)."""
    parts = [p for p in path.split("/") if p]
    has_key = len(parts) > 1
    if method == "GET":
        if has_key:
            return "GetObject"
        if not parts:
            return "ListBuckets"
        if "list-type" in query:
            return "ListObjectsV2"
        for sub, name in (("notification", "GetBucketNotificationConfiguration"), ("policy", "GetBucketPolicy"),
                          ("versioning", "GetBucketVersioning"), ("encryption", "GetBucketEncryption"),
                          ("location", "GetBucketLocation"), ("tagging", "GetBucketTagging"),
                          ("versions", "ListObjectVersions"), ("uploads", "ListMultipartUploads")):
            if sub in query:
                return name
        return "ListObjects"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "PUT":
        if has_key:
            if "x-amz-copy-source" in headers:
                return "CopyObject"
            return "UploadPart" if "partNumber" in query else "PutObject"
        for sub, name in (("notification", "PutBucketNotificationConfiguration"), ("policy", "PutBucketPolicy"),
                          ("versioning", "PutBucketVersioning"), ("encryption", "PutBucketEncryption"),
                          ("tagging", "PutBucketTagging"), ("lifecycle", "PutBucketLifecycleConfiguration"),
                          ("publicAccessBlock", "PutPublicAccessBlock")):
            if sub in query:
                return name
        return "CreateBucket"
    if method == "DELETE":
        if has_key:
            return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
        return "DeleteBucket"
    if method == "POST":
        if "delete" in query:
            return "DeleteObjects"
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
    return f"{method} {path}"


def describe(environ: dict[str, Any], body: bytes | None) -> tuple[str, str]:
    """(service, operation) of a request to moto."""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if "CONTENT_TYPE" in environ:
        headers["content-type"] = environ["CONTENT_TYPE"]
    match = _SCOPE.search(headers.get("authorization", ""))
    service = match.group(1) if match else "unknown"
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    target = headers.get("x-amz-target")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if "Action" in query:
        return service, query["Action"][0]
    if body is not None:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if "Action" in form:
            return service, form["Action"][0]
    if service == "s3":
        return service, s3_operation(method, path, query, headers)
    if service == "lambda" and method == "POST" and path.endswith("/invocations"):
        return service, "Invoke"
    if service == "lakeformation" and path.count("/") == 1 and len(path) > 1:
        return service, path[1:]  # rest-json: POST /GrantPermissions
    return service, f"{method} {path}"


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: deque[dict[str, Any]] = deque(maxlen=CAPACITY)
        self._invocations: deque[dict[str, Any]] = deque(maxlen=CAPACITY)
        self._next_request = 0
        self._next_invocation = 0

    def add_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            entry["seq"] = self._next_request
            self._next_request += 1
            self._requests.append(entry)

    def start_invocation(self, function: str, event: bytes) -> dict[str, Any]:
        stage = None
        try:
            parsed = json.loads(event or b"null")
            if isinstance(parsed, dict):
                value = parsed.get("stage", parsed.get("Step"))
                stage = value if isinstance(value, str) else None
        except ValueError:
            pass
        entry = {"function": function, "stage": stage, "start": time.time(), "end": None, "failed": None}
        with self._lock:
            entry["seq"] = self._next_invocation
            self._next_invocation += 1
            self._invocations.append(entry)
        return entry

    @staticmethod
    def end_invocation(entry: dict[str, Any], failed: bool) -> None:
        entry["failed"] = failed
        entry["end"] = time.time()

    def requests_since(self, since: int) -> dict[str, Any]:
        with self._lock:
            return {"next": self._next_request, "requests": [dict(e) for e in self._requests if e["seq"] >= since]}

    def invocations_since(self, since: int) -> dict[str, Any]:
        with self._lock:
            return {"next": self._next_invocation, "invocations": [dict(e) for e in self._invocations if e["seq"] >= since]}

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._invocations.clear()


def _json_response(start_response: Callable[..., Any], status: str, payload: Any) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def wrap(app: Callable[..., Any], log: RequestLog) -> Callable[..., Any]:
    """WSGI middleware: serve /_lakeops/*, log every other request moto answers."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path.startswith("/_lakeops/"):
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            since = int((query.get("since") or ["0"])[0] or 0)
            method = environ.get("REQUEST_METHOD")
            if path == "/_lakeops/requests" and method == "GET":
                return _json_response(start_response, "200 OK", log.requests_since(since))
            if path == "/_lakeops/invocations" and method == "GET":
                return _json_response(start_response, "200 OK", log.invocations_since(since))
            if path == "/_lakeops/requests/reset" and method == "POST":
                log.reset()
                return _json_response(start_response, "200 OK", {})
            return _json_response(start_response, "404 Not Found", {"message": f"no {method} {path}"})
        if path.startswith("/moto-api"):
            return app(environ, start_response)

        body = None
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            # Query-protocol calls name their Action in the body; buffer it and hand moto a copy.
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
        started = time.time()
        status: list[int] = [0]

        def recording_start_response(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info) if exc_info else start_response(status_line, headers)

        response = app(environ, recording_start_response)
        service, operation = describe(environ, body)
        method = environ.get("REQUEST_METHOD", "GET")
        agent = environ.get("HTTP_USER_AGENT", "")
        log.add_request(
            {
                "service": service,
                "operation": operation,
                "method": method,
                "path": path,
                "range": environ.get("HTTP_RANGE"),
                "status": status[0],
                "start": started,
                "end": time.time(),
                "mutating": is_mutating(operation, method) if service != "s3" else method not in ("GET", "HEAD"),
                "client": "rust-sdk" if "aws-sdk-rust" in agent else "other",
            }
        )
        return response

    return middleware
