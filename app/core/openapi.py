"""Error responses in the OpenAPI schema, from the one catalogue (app.core.errors).

Routes declare what they themselves can answer: `responses=error_responses("NOT_FOUND")`.
What the shared machinery answers is added to every operation it applies to when the
schema is generated (`describe_shared_errors`), so no route can forget it:
- 403 CSRF_CROSS_ORIGIN on unsafe methods (the cross-origin check runs before any route);
- 413 PAYLOAD_TOO_LARGE on operations with a body (the body limit), and 400 BAD_REQUEST
  for a body that is not text in its declared encoding (FastAPI cannot parse it);
- 422 VALIDATION_ERROR wherever FastAPI validates input, with the real error model
  instead of FastAPI's `HTTPValidationError`;
- 503 SERVICE_UNAVAILABLE on everything that reads the database (all but /healthz).
"""

from collections import defaultdict
from typing import Any

from app.core.errors import CATALOGUE, ErrorBody, ErrorSpec

ERROR_SCHEMA = "ErrorBody"  # the class name: FastAPI names components after it
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
UNSAFE_METHODS = frozenset({"post", "put", "patch", "delete"})
WITHOUT_DATABASE = frozenset({"/healthz"})
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Через сколько секунд повторить · Seconds to wait before retrying",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def example_body(spec: ErrorSpec) -> dict[str, Any]:
    detail = spec.en.rstrip(".") if spec.detail is None else spec.detail
    return {"code": spec.code, "detail": detail, "message": spec.ru}


def _response(specs: list[ErrorSpec]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "model": ErrorBody,
        "description": " / ".join(f"`{s.code}`: {s.ru}" for s in specs),
        "content": {
            "application/json": {
                "examples": {
                    s.code: {"summary": f"{s.ru} · {s.en}", "value": example_body(s)} for s in specs
                }
            }
        },
    }
    if any(s.status in (429, 503) for s in specs):
        response["headers"] = RETRY_AFTER_HEADER
    return response


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each code's status with the error model and a named
    example per code (Swagger UI offers them in a list)."""
    by_status: dict[int, list[ErrorSpec]] = defaultdict(list)
    for code in codes:
        spec = CATALOGUE[code]  # KeyError: a code the catalogue doesn't know
        by_status[spec.status].append(spec)
    return {status: _response(specs) for status, specs in sorted(by_status.items())}


def _add(operation: dict[str, Any], code: str) -> None:
    """Add one code's example to the operation's response for its status (merging)."""
    spec = CATALOGUE[code]
    responses = operation.setdefault("responses", {})
    response = responses.setdefault(str(spec.status), {"description": ""})
    media = response.setdefault("content", {}).setdefault("application/json", {})
    media["schema"] = ERROR_REF
    media.pop("example", None)
    examples = media.setdefault("examples", {})
    if code not in examples:
        examples[code] = {"summary": f"{spec.ru} · {spec.en}", "value": example_body(spec)}
        line = f"`{code}`: {spec.ru}"
        described = response.get("description") or ""
        if line not in described:
            response["description"] = f"{described} / {line}" if described else line
    if spec.status in (429, 503):
        response.setdefault("headers", {}).update(RETRY_AFTER_HEADER)


def describe_shared_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the errors the middleware and the framework answer with (see the module doc)."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": ""}
                _add(operation, "VALIDATION_ERROR")
            if method in UNSAFE_METHODS:
                _add(operation, "CSRF_CROSS_ORIGIN")
            if "requestBody" in operation:
                _add(operation, "PAYLOAD_TOO_LARGE")
                _add(operation, "BAD_REQUEST")
            if path not in WITHOUT_DATABASE:
                _add(operation, "SERVICE_UNAVAILABLE")
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
