"""Hand finished emails to SMTP (or to the log), and say whether a failure is worth retrying.

- `build_message` turns an `OutgoingEmail` into an `emails.Message` whose MIME root is
  `multipart/alternative` (text/plain first, text/html last). The `emails` library wraps
  that part in `multipart/related` inside `multipart/mixed`, for attachments we never send;
  the extra levels are noise to spam filters and to clients that show a paperclip for
  `mixed`, so `_AlternativeMessage` builds the root as `alternative` directly.
- `SMTPSender` keeps one SMTP connection for a whole `async with` batch (the `emails`
  library's `AsyncSMTPBackend` over aiosmtplib) and checks every response: the backend's
  `fail_silently` defaults to True and would turn a refused message into a return value.
- Failures become `PermanentDeliveryError` (a 5xx for this message's recipient or
  content: retrying cannot help), `TemporaryDeliveryError` (a 4xx for this message) or
  `ServerUnavailable` (no session with the server at all, or the server refusing our
  login or sender, whatever the code: the batch waits, nothing is dropped). Their
  messages are one line and never contain the SMTP password.
"""

import logging
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Protocol

import aiosmtplib
import emails
from emails.backend.smtp.aio_backend import AsyncSMTPBackend
from emails.utils import SafeMIMEMultipart

from app.core.config import Settings

logger = logging.getLogger("app.email")

# What may never reach a header: a line break starts a new header, NUL ends C strings.
_HEADER_BREAKERS = str.maketrans({"\r": " ", "\n": " ", "\x00": " "})
_MAX_ERROR_LENGTH = 300


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    message_id: str
    date: datetime  # timezone-aware
    # The MIME message as it goes over the wire, when built ahead (EmailService.compose
    # builds it, in the dispatcher's worker thread: it is most of a message's CPU).
    mime: bytes | None = None
    # Extra header fields (name, value), e.g. a newsletter's List-Unsubscribe.
    headers: tuple[tuple[str, str], ...] = ()


class DeliveryError(Exception):
    """A message was not handed over. The message is one line, without secrets."""

    permanent: bool = False


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying: refused connection, timeout, disconnect, a 4xx reply."""

    permanent = False


class ServerUnavailable(TemporaryDeliveryError):
    """The server takes no mail from us now, whatever the message: unreachable (refused or
    dropped connection, timeout, TLS failure) or refusing our session (greeting, login,
    sender address). The rest of the batch would fail the same way, and no message is to
    blame: even a 5xx here (535 wrong password, 553 sender refused) is a setting for an
    operator to fix, after which the queue can go; the outbox keeps the messages meanwhile
    (until OUTBOX_GIVE_UP_SECONDS)."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: a 5xx reply (a refused recipient, failed authentication)."""

    permanent = True


def one_line(value: str) -> str:
    """A header value: CR, LF and NUL become spaces, runs of whitespace one space."""
    return " ".join(value.translate(_HEADER_BREAKERS).split())


def new_message_id(sender_address: str) -> str:
    """`<32 hex digits@the sender's domain>`: unique without asking DNS for our name.
    (`EMAIL_FROM` is validated as an address by Settings: it has one `@` and a domain.)"""
    domain = sender_address.rpartition("@")[2].strip().lower()
    try:
        domain.encode("ascii")
    except UnicodeEncodeError:
        domain = domain.encode("idna").decode("ascii")
    return f"<{uuid.uuid4().hex}@{domain}>"


class _AlternativeMessage(emails.Message):
    """An `emails.Message` whose root is `multipart/alternative` (see the module doc)."""

    def build_message(self, message_cls: type | None = None) -> SafeMIMEMultipart:
        msg = self._build_root_message(message_cls, _subtype="alternative")
        text, html = self._build_text_part(), self._build_html_part()
        if text is None or html is None:
            raise ValueError("an email needs both a text and an HTML part")
        msg.attach(text)
        msg.attach(html)
        return msg


@dataclass(frozen=True, slots=True)
class _Prebuilt:
    """A message built ahead, in the shape the `emails` backend sends (`as_bytes()`)."""

    data: bytes

    def as_bytes(self) -> bytes:
        return self.data


def build_message(email: OutgoingEmail, *, from_address: str, from_name: str) -> emails.Message:
    """The MIME message, UTF-8 throughout, header values made one line."""
    if email.date.tzinfo is None:
        raise ValueError("an email's date must be timezone-aware")
    return _AlternativeMessage(
        subject=one_line(email.subject),
        text=email.text,
        html=email.html,
        mail_from=(one_line(from_name), one_line(from_address)),
        mail_to=one_line(email.to),
        message_id=one_line(email.message_id),
        # emails' own Date formatting reads an aware datetime as local time.
        date=format_datetime(email.date),
        headers={one_line(name): one_line(value) for name, value in email.headers},
        charset="utf-8",
    )


class EmailSender(Protocol):
    """A batch of sends: `async with make_sender(settings) as sender: await sender.send(e)`."""

    async def __aenter__(self) -> "EmailSender": ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def send(self, email: OutgoingEmail) -> None:
        """Hand one email over; raises TemporaryDeliveryError or PermanentDeliveryError."""
        ...


class ConsoleSender:
    """Writes each whole message to the log (logger `app.email`, INFO) and never fails:
    the default backend, so a developer reads confirmation codes in the console."""

    def __init__(self, settings: Settings) -> None:
        self.from_address = settings.EMAIL_FROM
        self.from_name = settings.EMAIL_FROM_NAME

    async def __aenter__(self) -> "ConsoleSender":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, email: OutgoingEmail) -> None:
        message = build_message(email, from_address=self.from_address, from_name=self.from_name)
        built = message.as_message()  # built as SMTP would send it: same header checks
        logger.info(
            "email (console backend, not sent)\n"
            "From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: %s\n\n"
            "----- text/plain -----\n%s\n----- text/html -----\n%s",
            f"{one_line(self.from_name)} <{self.from_address}>",
            one_line(email.to),
            one_line(email.subject),
            built["Date"],
            built["Message-ID"],
            email.text,
            email.html,
        )


class SMTPSender:
    """One SMTP connection for the `async with` block; `send` raises on any failure."""

    def __init__(self, settings: Settings) -> None:
        if not settings.SMTP_HOST:
            raise ValueError("SMTP_HOST is required for the smtp email backend")
        self.host = settings.SMTP_HOST
        self.port = settings.SMTP_PORT
        self.username = settings.SMTP_USERNAME
        self._password = settings.SMTP_PASSWORD  # SecretStr: revealed only to the backend
        self.ssl = settings.SMTP_SSL
        self.starttls = settings.SMTP_STARTTLS
        self.timeout = settings.SMTP_TIMEOUT
        self.from_address = settings.EMAIL_FROM
        self.from_name = settings.EMAIL_FROM_NAME
        self._backend: AsyncSMTPBackend | None = None

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"<SMTPSender {user}{self.host}:{self.port} ssl={self.ssl} starttls={self.starttls}>"

    async def __aenter__(self) -> "SMTPSender":
        # Connects lazily, at the first send: a connection failure then belongs to a message.
        self._backend = AsyncSMTPBackend(
            host=self.host,
            port=self.port,
            ssl=self.ssl,
            tls=self.starttls,
            user=self.username,
            password=self._password.get_secret_value() if self._password else None,
            timeout=self.timeout,
            # The backend's default asks DNS for our FQDN, blocking the event loop.
            local_hostname=socket.gethostname() or "localhost",
            fail_silently=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        backend, self._backend = self._backend, None
        if backend is None:
            return
        try:
            await backend.close()
        except Exception as error:  # the batch's messages were handed over already
            logger.debug("SMTP QUIT failed: %s", self._describe(error))

    async def send(self, email: OutgoingEmail) -> None:
        if self._backend is None:
            raise RuntimeError("SMTPSender.send outside `async with`")
        recipient = one_line(email.to)
        if recipient != email.to.strip() or not _looks_like_address(recipient):
            raise PermanentDeliveryError(f"not a single email address: {recipient[:100]!r}")
        message: emails.Message | _Prebuilt = (
            _Prebuilt(email.mime)
            if email.mime is not None
            else build_message(email, from_address=self.from_address, from_name=self.from_name)
        )
        try:
            # With fail_silently=False the backend raises every failure it records
            # (`raise_if_needed`); the tests against a real server refuse each kind.
            await self._backend.sendmail(
                from_addr=self.from_address, to_addrs=[recipient], msg=message
            )
        except Exception as error:
            raise self._classify(error) from error

    # -- classifying failures ------------------------------------------------------------

    def _describe(self, error: BaseException) -> str:
        """One line naming the failure, never the password, at most a few hundred chars."""
        text = one_line(f"{type(error).__name__}: {error}")
        if self._password:
            secret = self._password.get_secret_value()
            if secret:
                text = text.replace(secret, "**********")
        return text[:_MAX_ERROR_LENGTH]

    def _by_code(self, code: int | None, text: str) -> DeliveryError:
        """A reply about this message: 5xx permanent, anything else temporary."""
        if code is not None and 500 <= code < 600:
            return PermanentDeliveryError(text)
        return TemporaryDeliveryError(text)

    def _classify(self, error: BaseException) -> DeliveryError:
        where = f"{self.host}:{self.port}"
        if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
            codes = [e.code for e in error.recipients]
            permanent = bool(codes) and all(500 <= c < 600 for c in codes)
            cls = PermanentDeliveryError if permanent else TemporaryDeliveryError
            return cls(f"SMTP {where} refused the recipient: {self._describe(error)}")
        if isinstance(error, aiosmtplib.SMTPDataError):
            # The server's verdict on this message's content: 4xx later, 5xx never.
            return self._by_code(error.code, f"SMTP {where} replied {self._describe(error)}")
        if isinstance(error, aiosmtplib.SMTPResponseException):
            # Greeting, login (535), sender (553): the server refuses us, not this message.
            if 500 <= error.code < 600:
                logger.error(
                    "SMTP %s refuses the session (check SMTP_* and EMAIL_FROM): %s",
                    where,
                    self._describe(error),
                )
            return ServerUnavailable(f"SMTP {where} refused us: {self._describe(error)}")
        if isinstance(error, aiosmtplib.SMTPException | OSError | TimeoutError):
            # No usable reply: refused or dropped connection, timeout, TLS failure, or a
            # feature the server lacks (SMTPNotSupported: a setting to fix, then mail goes).
            return ServerUnavailable(f"SMTP {where} unreachable: {self._describe(error)}")
        # The message itself could not be built (the backend builds the MIME as it sends):
        # it would fail the same way every time.
        return PermanentDeliveryError(f"message not sendable: {self._describe(error)}")


def _looks_like_address(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain) and not any(c in value for c in " <>,;\"'")


def make_sender(settings: Settings) -> EmailSender:
    """A fresh sender for one batch, by EMAIL_BACKEND."""
    if settings.EMAIL_BACKEND == "smtp":
        return SMTPSender(settings)
    return ConsoleSender(settings)
