"""The OpenAPI schema of the very app `uvicorn app.main:app` serves is QA's contract.

Every test here reads `app.main.app` — the object `make run` and the Dockerfile serve —
not an app built for the test: a test-built app once showed the right docs while the
served one showed raw names.
"""

import os
import re
import subprocess
import sys
from typing import Any

import pytest

import app.main
from app.auth.cookie import COOKIE_NAME
from app.core.errors import CATALOGUE
from app.core.openapi import ERROR_REF
from app.docs import error_catalogue_markdown
from app.main import OPENAPI_TAGS
from tests.conftest import ROOT

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
UNSAFE = {"post", "put", "patch", "delete"}
# Where the limiter answers 429: registration and login, current_password checks, and
# password reset requests.
RATE_LIMITED = {
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("patch", "/users/me"),
    ("post", "/auth/forgot-password"),
    ("post", "/auth/confirm"),
}
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return app.main.app.openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def example_codes(response: dict[str, Any]) -> set[str]:
    examples = response.get("content", {}).get("application/json", {}).get("examples", {})
    return {example["value"]["code"] for example in examples.values()}


def test_every_operation_is_named_and_described_in_russian_first(schema):
    for method, path, operation in operations(schema):
        summary = operation.get("summary", "")
        where = (method, path, summary)
        assert CYRILLIC.search(summary.split(" · ")[0]), where
        assert " · " in summary and not re.fullmatch(r"[\w ]+:[\w. ]+", summary), where
        assert CYRILLIC.search(operation.get("description", "")), where
        assert len(operation.get("tags", [])) == 1, where
        assert operation["tags"][0] in {tag["name"] for tag in OPENAPI_TAGS}, where
    assert [tag["name"] for tag in schema["tags"]] == [tag["name"] for tag in OPENAPI_TAGS]
    assert all(" · " in tag["description"] for tag in schema["tags"])


def required_responses(
    method: str, path: str, operation: dict[str, Any]
) -> list[tuple[int, str | None, str]]:
    """(status, a code its examples must show, why) for what this operation can answer."""
    required: list[tuple[int, str | None, str]] = []
    if operation.get("security"):
        required.append((401, "UNAUTHORIZED", "signed in"))
    if path.startswith("/admin"):
        required.append((403, "ADMIN_ROLE_REQUIRED", "admin only"))
    if method in UNSAFE:
        required.append((403, "CSRF_CROSS_ORIGIN", "unsafe method"))
    if "{" in path:
        required.append((404, None, "an id in the path"))
    if operation.get("parameters") or operation.get("requestBody"):
        required.append((422, "VALIDATION_ERROR", "input"))
    if "requestBody" in operation:
        required.append((413, "PAYLOAD_TOO_LARGE", "a body"))
        required.append((400, "BAD_REQUEST", "an unparsable body"))
    if (method, path) in RATE_LIMITED:
        required.append((429, "RATE_LIMITED", "rate-limited"))
    if path != "/healthz":
        required.append((503, "SERVICE_UNAVAILABLE", "reads the database"))
    return required


def test_every_response_it_can_give_is_declared(schema):
    gaps = []
    for method, path, operation in operations(schema):
        declared = operation["responses"]
        for status, code, why in required_responses(method, path, operation):
            response = declared.get(str(status))
            if response is None or (code is not None and code not in example_codes(response)):
                gaps.append(f"{method.upper()} {path}: {status} {code or ''} ({why})")
        for status in ("429", "503"):
            header = declared.get(status, {}).get("headers", {}).get("Retry-After", {})
            if status in declared and not header.get("required"):
                gaps.append(f"{method.upper()} {path}: {status} without a required Retry-After")
        if path in ("/auth/login", "/auth/logout", "/auth/logout-all"):
            assert "200" not in declared, (method, path)  # they answer 204, never 200
    assert gaps == []


def test_every_error_response_uses_the_one_model_with_real_examples(schema):
    model = schema["components"]["schemas"]["ErrorBody"]
    assert set(model["required"]) == {"code", "detail", "message"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            media = response["content"]["application/json"]
            assert media["schema"] == ERROR_REF, (method, path, status)
            assert media["examples"], (method, path, status)
            for name, example in media["examples"].items():
                body = example["value"]
                spec = CATALOGUE[body["code"]]
                assert name == spec.code and spec.status == int(status), (method, path, name)
                assert body["message"] == spec.ru
                assert set(body) == {"code", "detail", "message"}


def test_field_constraints_are_the_real_ones(schema):
    components = schema["components"]["schemas"]
    password = components["UserCreate"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (8, 128)
    phone = components["UserCreate"]["properties"]["phone"]
    assert "E.164" in phone["description"] and phone["examples"]
    name = components["UserCreate"]["properties"]["name"]
    assert "pattern" not in name and CYRILLIC.search(name["description"])
    for model in ("UserCreate", "UserUpdate", "UserRead", "AdminUserUpdate", "SessionRead"):
        for field, prop in components[model]["properties"].items():
            assert CYRILLIC.search(prop.get("description", "")), (model, field)
    rendered = str(schema)
    assert "\\x00" not in rendered and "x1f" not in rendered  # no raw regex for people to read


def test_json_bodies_offer_named_examples(schema):
    for method, path, operation in operations(schema):
        for content_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if content_type == "application/json":
                assert len(media.get("examples", {})) >= 2, (method, path)
                assert all(CYRILLIC.search(e["summary"]) for e in media["examples"].values())
    patch_me = schema["paths"]["/users/me"]["patch"]["requestBody"]["content"]
    assert "password" in patch_me["application/json"]["examples"]


def test_the_login_form_is_two_prefilled_fields(schema):
    media = schema["paths"]["/auth/login"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"
    ]
    form = schema["components"]["schemas"][media["schema"]["$ref"].rsplit("/", 1)[1]]
    assert set(form["properties"]) == {"username", "password"}
    assert set(form["required"]) == {"username", "password"}
    assert "email" in form["properties"]["username"]["description"].lower()
    registration = schema["paths"]["/auth/register"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]["customer"]["value"]
    example = {"username": registration["email"], "password": registration["password"]}
    assert media["example"] == example
    assert form["properties"]["username"]["examples"] == [example["username"]]
    assert form["properties"]["password"]["examples"] == [example["password"]]


async def test_the_prefilled_examples_register_and_log_in(schema, client):
    """QA presses Execute on register, then on login, without typing anything."""
    register = schema["paths"]["/auth/register"]["post"]["requestBody"]["content"]
    login = schema["paths"]["/auth/login"]["post"]["requestBody"]["content"]
    for example in register["application/json"]["examples"].values():
        assert (await client.post("/auth/register", json=example["value"])).status_code == 201
    form = login["application/x-www-form-urlencoded"]["example"]
    assert (await client.post("/auth/login", data=form)).status_code == 204
    assert (await client.get("/users/me")).json()["email"] == form["username"]


def test_the_cookie_scheme_says_the_authorize_button_is_not_needed(schema):
    schemes = schema["components"]["securitySchemes"]
    [(name, scheme)] = schemes.items()
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "cookie", COOKIE_NAME)
    assert "/auth/login" in scheme["description"] and "Authorize" in scheme["description"]
    assert schema["paths"]["/users/me"]["get"]["security"] == [{name: []}]
    assert "security" not in schema["paths"]["/auth/register"]["post"]


def test_the_error_catalogue_is_generated_into_the_description_and_the_readme(schema):
    table = error_catalogue_markdown()
    for code, spec in CATALOGUE.items():
        assert f"| `{code}` | {spec.status} |" in table
    assert table in schema["info"]["description"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert table in readme, "README's error catalogue is stale: run `python -m app errors`"


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        (None, "ru"),
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        ("en-US,en;q=0.9", "en"),
        ("de, en;q=0.5", "en"),
    ],
)
async def test_messages_follow_accept_language(client, accept_language, language):
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = await client.get("/users/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["message"] == CATALOGUE["UNAUTHORIZED"].message(language)
    refused = await client.post(
        "/auth/login",
        data={"username": "a@b.example"},
        headers={**headers, "Sec-Fetch-Site": "cross-site"},
    )
    assert refused.json()["message"] == CATALOGUE["CSRF_CROSS_ORIGIN"].message(language)


def test_the_errors_command_prints_the_whole_catalogue(tmp_path):
    """It imports the defining modules without building the app: none may be missing."""
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "app", "errors"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == error_catalogue_markdown()
