"""Who the client is: the TCP peer, or what a trusted reverse proxy says it is.

uvicorn runs with --no-proxy-headers, so `scope["client"]` is always the TCP peer; this
module is the one place that decides whether to believe X-Forwarded-For. Only when the
peer is one of TRUSTED_PROXIES is the header read, right to left: the client is the first
address that is not itself a trusted proxy (the hops a client can forge are to its left).

The result is a valid address in its canonical spelling (at most 39 characters, no zone
index) or None: rate-limit keys and the session table store nothing else.
"""

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from starlette.types import Scope

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
# More hops than any real proxy chain; the rest of a long header is not even split.
MAX_FORWARDED_HOPS = 16


def parse_address(value: str) -> Address | None:
    """An IP address as proxies write it (`1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443`,
    `fe80::1%eth0`), or None when the value is not one."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.partition(":")[0]
    value = value.partition("%")[0]  # a zone index names a local interface, not a client
    if not value or len(value) > 45:
        return None
    try:
        address = ip_address(value)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddress:
    def __init__(self, trusted_proxies: Sequence[Network]):
        self._trusted = tuple(trusted_proxies)

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)

    def __call__(self, scope: Scope) -> str | None:
        peer = scope.get("client")
        address = parse_address(peer[0]) if peer else None
        if address is None or not self._trusted or not self._is_trusted(address):
            return None if address is None else str(address)
        hops = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        if not hops:
            return str(address)  # the proxy's own request (a health check)
        entries = b",".join(hops).decode("latin-1").rsplit(",", MAX_FORWARDED_HOPS)
        for entry in reversed(entries[-MAX_FORWARDED_HOPS:]):
            hop = parse_address(entry)
            if hop is None:
                return None  # the chain is garbled past a proxy we trust: unknown
            if not self._is_trusted(hop):
                return str(hop)
            address = hop
        return str(address)  # every hop is one of our proxies: the leftmost one
