"""A real SMTP server for tests (aiosmtpd on a free 127.0.0.1 port), and its fixtures.

The fixtures (`smtp_server`, `smtp_server_with_auth`, `silent_smtp_server`) reach every
test: tests/conftest.py registers this module (`pytest_plugins`). Take them as arguments;
don't import them (ruff flags an imported fixture taken as an argument, F811):

    async def test_it_arrives(smtp_server, make_settings):
        settings = make_settings(**smtp_server.settings_values())  # or settings_for(smtp_server)
        ...  # send
        [message] = smtp_server.messages          # email.message.EmailMessage
        assert message["Subject"] == "…"

What a test can do with the server (`SMTPTestServer`):
- read `messages` (parsed with `email.policy.default`), `raw` (the bytes received),
  `envelopes` (`mail_from`, `rcpt_tos`) and `connections` (TCP connections accepted);
- `fail_next(2, "451 4.3.0 Try again later")`: the next 2 DATA commands get that reply
  (`command="RCPT"` for recipients); `"550 5.1.1 No such user"` for a permanent refusal;
  `command="MAIL"` refuses the sender (the session), `command="QUIT"` answers QUIT with
  that reply instead of 221 (the connection is closed all the same);
- `helo_names`: the name the client gave in EHLO (or HELO), once per MAIL command;
  `quits`: how many QUIT commands arrived;
- `stop()` then `start()`: down (connection refused) and back up on the same port;
- `data_delay = 0.3`: each DATA is answered that much later (a slow server);
- `await wait_for_messages(n)`: for senders running in the background (a dispatcher);
- `SMTPTestServer(username=..., password=...)` (fixture `smtp_server_with_auth`): AUTH
  PLAIN/LOGIN without TLS, accepting that one pair and requiring it.

The server runs in its own thread and event loop (aiosmtpd's `Controller`), so an async
test's client talks to it over a real socket. `silent_smtp_server` accepts TCP connections
and never says a word: the client's timeout is what ends the conversation.
"""

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.core.config import Settings, load_settings

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ReceivedEnvelope:
    mail_from: str
    rcpt_tos: list[str]


class _Handler:
    """aiosmtpd's handler: records what arrives, answers with scheduled failures."""

    def __init__(self, server: "SMTPTestServer") -> None:
        self.server = server

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.server._seen_mail(session.host_name)
        if self.server.username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        failure = self.server._take_failure("MAIL")
        if failure:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        failure = self.server._take_failure("RCPT")
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self.server._take_failure("DATA")
        if failure:
            return failure
        if self.server.data_delay:  # a slow server: a batch takes a while
            await asyncio.sleep(self.server.data_delay)
        raw = cast(bytes, envelope.original_content)
        self.server._received(
            raw, ReceivedEnvelope(str(envelope.mail_from), list(envelope.rcpt_tos))
        )
        return "250 2.0.0 Message accepted"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.server._seen_quit()
        return self.server._take_failure("QUIT") or "221 Bye"  # 221 Bye: aiosmtpd's own


class _CountingController(Controller):
    def __init__(self, server: "SMTPTestServer", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_server = server

    def factory(self) -> SMTP:  # called once per accepted connection
        self.test_server.connections += 1
        return cast(SMTP, super().factory())


class SMTPTestServer:
    host = HOST

    def __init__(
        self, port: int | None = None, *, username: str | None = None, password: str | None = None
    ) -> None:
        self.port = port or free_port()
        self.username = username
        self.password = password
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.envelopes: list[ReceivedEnvelope] = []
        self.connections = 0
        self.data_delay = 0.0  # seconds before each DATA is answered
        self.logins: list[str] = []  # usernames that logged in
        self.helo_names: list[str] = []  # the client's EHLO/HELO name, once per MAIL
        self.quits = 0  # QUIT commands received
        self._failures: dict[str, list[str]] = {"DATA": [], "RCPT": [], "MAIL": [], "QUIT": []}
        self._lock = threading.Lock()
        self._controller: _CountingController | None = None

    # -- control -------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on `port` (the same one after a `stop()`)."""
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {"server_hostname": "smtp.test", "ready_timeout": 10}
        if self.username is not None:
            # AUTH over plain text; required by handle_MAIL (aiosmtpd's own auth_required
            # warns about plain text on every connection).
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        controller = _CountingController(
            self, handler=_Handler(self), hostname=HOST, port=self.port, **kwargs
        )
        controller.start()
        self.connections -= 1  # start() opened one connection of its own to check readiness
        self._controller = controller

    def stop(self) -> None:
        """Close the listener and every open connection: clients now get refused."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def fail_next(self, count: int, reply: str, command: str = "DATA") -> None:
        """The next `count` DATA (or RCPT, MAIL, QUIT) commands get `reply`, e.g. "451 4.3.0
        Later"."""
        if command not in self._failures:
            raise ValueError(f"command must be one of {sorted(self._failures)}")
        with self._lock:
            self._failures[command].extend([reply] * count)

    def settings_values(self, **overrides: Any) -> dict[str, Any]:
        """Settings that send to this server (pass to `load_settings` or `make_settings`)."""
        values: dict[str, Any] = {
            "EMAIL_BACKEND": "smtp",
            "SMTP_HOST": self.host,
            "SMTP_PORT": self.port,
            "SMTP_STARTTLS": False,
            "SMTP_SSL": False,
            "SMTP_TIMEOUT": 5,
        }
        if self.username is not None:
            values.update(SMTP_USERNAME=self.username, SMTP_PASSWORD=self.password)
        values.update(overrides)
        return values

    async def wait_for_messages(self, count: int, within: float = 10) -> list[EmailMessage]:
        """Wait until at least `count` messages arrived; fails the test after `within` seconds."""
        deadline = time.monotonic() + within
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} messages arrived")
            await asyncio.sleep(0.01)
        return self.messages

    # -- called from the server's thread -------------------------------------------------

    def _take_failure(self, command: str) -> str | None:
        with self._lock:
            pending = self._failures[command]
            return pending.pop(0) if pending else None

    def _seen_mail(self, helo_name: str | None) -> None:
        with self._lock:
            self.helo_names.append(helo_name or "")

    def _seen_quit(self) -> None:
        with self._lock:
            self.quits += 1

    def _received(self, raw: bytes, envelope: ReceivedEnvelope) -> None:
        message = BytesParser(policy=default).parsebytes(raw)
        with self._lock:
            self.raw.append(raw)
            self.envelopes.append(envelope)
            self.messages.append(message)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        password = auth_data.password.decode()
        ok = secrets.compare_digest(login, self.username or "") and secrets.compare_digest(
            password, self.password or ""
        )
        if ok:
            self.logins.append(login)
        return AuthResult(success=ok, handled=False)


class SilentServer:
    """Accepts TCP connections (the kernel's backlog does) and never answers."""

    host = HOST

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((HOST, 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])

    def close(self) -> None:
        self._sock.close()


def settings_for(server: SMTPTestServer | SilentServer, **overrides: Any) -> Settings:
    """Settings for tests without a database: smtp to `server`, a random SECRET_KEY."""
    values: dict[str, Any] = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": server.host,
        "SMTP_PORT": server.port,
        "SMTP_STARTTLS": False,
        "SMTP_TIMEOUT": 5,
    }
    if isinstance(server, SMTPTestServer):
        values.update(server.settings_values())
    values.update(overrides)
    return load_settings(env_file=None, **values)


@pytest.fixture
def smtp_server() -> Iterator[SMTPTestServer]:
    server = SMTPTestServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server_with_auth() -> Iterator[SMTPTestServer]:
    server = SMTPTestServer(username="shop@example.com", password=secrets.token_urlsafe(18))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def silent_smtp_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()
