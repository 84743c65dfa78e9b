"""QA's path in a real Chromium: the docs load from this service alone, and logging in
through Swagger UI's "Try it out" signs the page in.

The service runs under uvicorn on 127.0.0.1 in a thread; Chromium is Debian's (.ci/run
installs it), never a browser Playwright downloads.
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, Request, Route
from playwright.async_api import async_playwright, expect

from app.auth.cookie import COOKIE_NAME
from app.auth.router import LOGIN_EXAMPLE as LOGIN_FORM_EXAMPLE
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, register

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


async def test_qa_logs_in_through_swagger_ui(server, browser):
    async with httpx.AsyncClient(base_url=server) as client:
        user = await register(client)

    page, watch = await open_page(browser, f"{server}/docs")
    await expect(page.locator(".opblock").first).to_be_visible()
    await page.wait_for_load_state("networkidle")
    assert watch.attempted == []

    login = operation(page, "post", "/auth/login")
    await try_it_out(login)
    username = login.get_by_placeholder("username", exact=True)
    password = login.get_by_placeholder("password", exact=True)
    # The form comes filled with the documented example.
    await expect(username).to_have_value(LOGIN_FORM_EXAMPLE["username"])
    await expect(password).to_have_value(LOGIN_FORM_EXAMPLE["password"])
    await username.fill(user["email"])
    await password.fill(PASSWORD)
    await execute(login, 204)

    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies[COOKIE_NAME]["httpOnly"] is True
    assert cookies[COOKIE_NAME]["secure"] is True

    me = operation(page, "get", "/users/me")
    await try_it_out(me)
    body = await execute(me, 200)
    await expect(body).to_contain_text(f'"email": "{user["email"]}"')

    assert watch.attempted == []
    assert watch.sent == []


async def test_redoc_renders_from_this_service_alone(server, browser):
    page, watch = await open_page(browser, f"{server}/redoc")
    await expect(page.get_by_role("heading", name=re.compile(r" Log in$"))).to_be_visible()
    await page.wait_for_load_state("networkidle")

    assert watch.sent == []
    # ReDoc's sidebar asks its CDN for a logo; the page's Content-Security-Policy makes the
    # browser refuse it before any request is made.
    assert {url: watch.failures.get(url) for url in watch.attempted} == {
        url: "csp" for url in watch.attempted
    }
