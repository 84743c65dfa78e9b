"""QA's path in a real Chromium: the docs load from this service alone, and the prefilled
examples of Swagger UI's "Try it out" register, log in and sign the page in.

The service is the one `make run` serves (`live_server`: `uvicorn app.main:app` with the
Makefile's flags, in a subprocess on 127.0.0.1); Chromium is Debian's (.ci/run installs
it), never a browser Playwright downloads.
"""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Request,
    Route,
    async_playwright,
    expect,
)

from app.auth.cookie import COOKIE_NAME
from app.users.schemas import REGISTRATION_EXAMPLES
from tests.conftest import LiveServer

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)",
)


@pytest.fixture
def server(live_server: LiveServer) -> str:
    # COOKIE_SECURE stays on: Chromium treats http://127.0.0.1 as a secure context and keeps
    # the Secure cookie, as the test checks.
    return live_server.origin


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    playwright = await async_playwright().start()
    try:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        await browser.close()
    finally:
        await playwright.stop()


class OffHostWatch:
    """Records every request a page makes to a host other than the service, and stops
    any that reaches the network, so nothing leaves the machine whatever the page does."""

    def __init__(self, origin: str):
        self.host = urlsplit(origin).netloc
        self.attempted: list[str] = []  # the page asked for these
        self.sent: list[str] = []  # and these got past the browser's own checks
        self.failures: dict[str, str | None] = {}

    def off_host(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme not in ("data", "blob") and parts.netloc != self.host

    async def attach(self, context: BrowserContext) -> None:
        context.on("request", self._on_request)
        context.on("requestfailed", self._on_failed)
        await context.route("**/*", self._route)

    def _on_request(self, request: Request) -> None:
        if self.off_host(request.url):
            self.attempted.append(request.url)

    def _on_failed(self, request: Request) -> None:
        self.failures[request.url] = request.failure

    async def _route(self, route: Route) -> None:
        if self.off_host(route.request.url):
            self.sent.append(route.request.url)
            await route.abort()
        else:
            await route.continue_()


async def open_page(browser: Browser, url: str) -> tuple[Page, OffHostWatch]:
    context = await browser.new_context()
    watch = OffHostWatch(url)
    await watch.attach(context)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(url)
    return page, watch


def operation(page: Page, method: str, path: str) -> Locator:
    """One operation block in Swagger UI."""
    return page.locator(f".opblock-{method}").filter(
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
    )


async def try_it_out(block: Locator) -> None:
    await block.locator(".opblock-summary").click()
    await block.get_by_role("button", name="Try it out").click()


async def execute(block: Locator, status: int) -> Locator:
    """Press Execute; wait for the response with this status; return its body cell."""
    await block.get_by_role("button", name="Execute").click()
    response = block.locator(".live-responses-table .response")
    await expect(response.locator(".response-col_status")).to_have_text(
        re.compile(rf"^\s*{status}\b")
    )
    return response.locator(".response-col_description")


async def authorize_dialog_text(page: Page) -> str:
    """What the Authorize dialog says about the cookie scheme (then closes it)."""
    await page.locator(".auth-wrapper").get_by_role("button", name="Authorize").click()
    dialog = page.locator(".modal-ux .auth-container")
    await expect(dialog).to_be_visible()
    text = await dialog.inner_text()
    await page.locator(".modal-ux").get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()
    return text


async def form_fields(block: Locator) -> list[str]:
    """The names of the form fields an operation's request body shows, in order."""
    rows = block.locator(".opblock-section-request-body tr.parameters[data-property-name]")
    await expect(rows.first).to_be_visible()
    return await rows.evaluate_all("rows => rows.map(r => r.dataset.propertyName)")


async def test_qa_registers_and_logs_in_with_the_prefilled_examples_alone(server, browser):
    """QA opens the served /docs and presses Try it out → Execute on register, then on
    login, typing nothing; the page is then signed in."""
    example = REGISTRATION_EXAMPLES["customer"]["value"]
    page, watch = await open_page(browser, f"{server}/docs")
    await expect(page.locator(".opblock").first).to_be_visible()
    await page.wait_for_load_state("networkidle")
    assert watch.attempted == []

    # The Authorize dialog says it isn't needed, and what to do instead.
    dialog = await authorize_dialog_text(page)
    assert "You don't need the Authorize button" in dialog
    assert "Кнопка Authorize не нужна" in dialog
    assert "POST /auth/login" in dialog

    register = operation(page, "post", "/auth/register")
    await try_it_out(register)
    body = register.locator("textarea.body-param__text")
    await expect(body).to_be_editable()
    assert json.loads(await body.input_value()) == example  # the first example, as it is
    registered = await execute(register, 201)
    await expect(registered).to_contain_text(f'"email": "{example["email"]}"')

    login = operation(page, "post", "/auth/login")
    await try_it_out(login)
    # Exactly the two fields QA needs, not OAuth2's six ...
    assert await form_fields(login) == ["username", "password"]
    for field in ("grant_type", "scope", "client_id", "client_secret"):
        assert field not in await login.inner_text()
    # ... filled with the registration example's credentials.
    await expect(login.get_by_placeholder("username", exact=True)).to_have_value(example["email"])
    await expect(login.get_by_placeholder("password", exact=True)).to_have_value(
        example["password"]
    )
    await execute(login, 204)

    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies[COOKIE_NAME]["httpOnly"] is True
    assert cookies[COOKIE_NAME]["secure"] is True

    me = operation(page, "get", "/users/me")
    await try_it_out(me)
    body = await execute(me, 200)
    await expect(body).to_contain_text(f'"email": "{example["email"]}"')

    assert watch.attempted == []
    assert watch.sent == []


async def test_redoc_renders_from_this_service_alone(server, browser):
    page, watch = await open_page(browser, f"{server}/redoc")
    await expect(page.get_by_role("heading", name=re.compile(r" Log in$"))).to_be_visible()
    await page.wait_for_load_state("networkidle")

    assert watch.sent == []
    # ReDoc's sidebar asks its CDN for a logo; the page's Content-Security-Policy makes the
    # browser refuse it before any request is made.
    assert {url: watch.failures.get(url) for url in watch.attempted} == dict.fromkeys(
        watch.attempted, "csp"
    )
