"""DKIM: with DKIM_* set, every email leaves signed by the emails library's signer, and
the signature verifies (dkimpy) against the public key a DNS TXT record would publish;
the unsubscribe headers are covered, as RFC 8058 requires."""

import base64
import re
from datetime import UTC, datetime

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.core.config import ConfigurationError, load_settings
from app.services.email.bulk import compile_content
from app.services.email.service import EmailService
from tests.smtp import settings_for


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns_for(record: bytes):
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"mail._domainkey.shop.test." else None

    return lookup


async def test_a_signed_newsletter_verifies_against_the_published_key(smtp_server, key_pair):
    path, record = key_pair
    settings = settings_for(
        smtp_server,
        EMAIL_FROM="news@shop.test",
        DKIM_DOMAIN="shop.test",
        DKIM_SELECTOR="mail",
        DKIM_PRIVATE_KEY_FILE=str(path),
    )
    service = EmailService(settings)
    content = compile_content(subject="Привет, {{ name }}", html="<p>{{ name }}</p>", text="x")
    email = service.compose(
        to="anna@example.com",
        template="newsletter",
        locale="ru",
        data={"name": "Анна", "unsubscribe_url": "https://shop.test/unsubscribe/t"},
        message_id=service.new_message_id(),
        date=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        bulk=content,
    )
    async with service.connect() as sender:
        await sender.send(email)

    [raw] = smtp_server.raw
    assert dkim.verify(raw, dnsfunc=dns_for(record))
    signature = re.search(rb"DKIM-Signature:(.*?)\r\n(?=\S)", raw, re.S).group(1)
    signed = re.search(rb"h=([^;]+)", b"".join(signature.split())).group(1).lower().split(b":")
    assert {b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"} <= set(signed)
    assert b"d=shop.test" in signature and b"s=mail" in signature

    # The check can fail: another key, or a changed header, does not verify.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    other_record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(
        other.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert not dkim.verify(raw, dnsfunc=dns_for(other_record))
    tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"X: y", 1)
    assert tampered != raw and not dkim.verify(tampered, dnsfunc=dns_for(record))


async def test_without_dkim_settings_nothing_is_signed(smtp_server):
    service = EmailService(settings_for(smtp_server))
    email = service.compose(
        to="anna@example.com",
        template="password_changed",
        locale="ru",
        data={"name": "Анна", "changed_at": "x"},
        message_id=service.new_message_id(),
        date=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
    )
    async with service.connect() as sender:
        await sender.send(email)
    assert b"DKIM-Signature" not in smtp_server.raw[0]


def test_dkim_settings_go_together_and_the_key_must_be_a_key(tmp_path, key_pair):
    path, _ = key_pair
    base = {"SECRET_KEY": "k" * 20 + "abcdefghijklmn"}
    with pytest.raises(ConfigurationError, match="go together"):
        load_settings(env_file=None, **base, DKIM_DOMAIN="shop.test")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    for file, reason in ((junk, "no PEM private key"), (tmp_path / "absent", "cannot be read")):
        with pytest.raises(ConfigurationError, match=reason):
            load_settings(
                env_file=None,
                **base,
                DKIM_DOMAIN="shop.test",
                DKIM_SELECTOR="mail",
                DKIM_PRIVATE_KEY_FILE=str(file),
            )
    ok = load_settings(
        env_file=None,
        **base,
        DKIM_DOMAIN="shop.test",
        DKIM_SELECTOR="mail",
        DKIM_PRIVATE_KEY_FILE=str(path),
    )
    assert ok.dkim_private_key() == path.read_bytes()


def test_the_dkim_lines_of_env_example_leave_dkim_off():
    empty = load_settings(
        env_file=None,
        SECRET_KEY="k" * 20 + "abcdefghijklmn",
        DKIM_DOMAIN="",
        DKIM_SELECTOR="",
        DKIM_PRIVATE_KEY_FILE="",
    )
    assert empty.dkim_private_key() is None
