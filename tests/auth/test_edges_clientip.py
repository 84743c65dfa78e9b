"""parse_address and ClientAddress on the spellings proxies really send, called directly:
pure functions of a string and an ASGI scope."""

from ipaddress import ip_network

import pytest

from app.auth.clientip import MAX_FORWARDED_HOPS, ClientAddress, parse_address

PROXIES = [ip_network("192.0.2.200/32"), ip_network("10.0.0.0/8")]
PROXY = "192.0.2.200"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" 198.51.100.7 ", "198.51.100.7"),
        ("198.51.100.7:8080", "198.51.100.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::1", "::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("fe80::1%eth0%1", "fe80::1"),  # no zone index, however many the value carries
        ("::ffff:198.51.100.7", "198.51.100.7"),
        # 45 characters, the longest spelling of an address: still one
        ("0000:0000:0000:0000:0000:ffff:255.255.255.255", "255.255.255.255"),
        ("[2001:db8::1", None),  # unclosed bracket
        ("[]", None),
        ("", None),
        ("198.51.100.7:8080:1", None),
        ("unknown", None),
    ],
)
def test_parse_address(value, expected):
    address = parse_address(value)
    assert (None if address is None else str(address)) == expected


def scope(peer: str | None, *forwarded: str) -> dict:
    headers = [(b"host", b"shop.test")]
    headers += [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    return {"type": "http", "headers": headers} | ({"client": (peer, 40000)} if peer else {})


def test_no_peer_is_no_address():
    assert ClientAddress([])(scope(None)) is None
    assert ClientAddress(PROXIES)(scope(None, "198.51.100.7")) is None


def test_a_trusted_proxys_own_request_is_the_proxy():
    assert ClientAddress(PROXIES)(scope(PROXY)) == PROXY


def test_forwarded_for_split_over_several_header_lines_is_one_chain():
    assert ClientAddress(PROXIES)(scope(PROXY, "198.51.100.5", "10.0.0.2")) == "198.51.100.5"


def test_a_chain_of_trusted_proxies_only_names_the_leftmost():
    assert ClientAddress(PROXIES)(scope(PROXY, "10.0.0.3, 10.0.0.2")) == "10.0.0.3"


def test_a_long_header_is_read_from_the_right():
    garbage = ", ".join(["not-an-address"] * 40)
    header = f"{garbage}, 198.51.100.9, 10.0.0.1"
    assert ClientAddress(PROXIES)(scope(PROXY, header)) == "198.51.100.9"
    # Past MAX_FORWARDED_HOPS trusted hops the chain is not read further: the last one read.
    hops = ", ".join(f"10.0.0.{n}" for n in range(1, MAX_FORWARDED_HOPS + 5))
    assert ClientAddress(PROXIES)(scope(PROXY, "198.51.100.9, " + hops)) == "10.0.0.5"


def test_an_untrusted_peer_is_itself_whatever_it_forwards():
    assert ClientAddress(PROXIES)(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    assert ClientAddress([])(scope(PROXY, "198.51.100.1")) == PROXY
