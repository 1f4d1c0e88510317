"""The containment guard: every address the lab uses is loopback or a lab namespace address.

A scenario (or, later, an imported Atomic Red Team test) names hosts in URLs, ``ssh``
targets and ``nc`` arguments. Before anything runs, :class:`Containment` checks each of them
and rewrites anything else to a lab sink, so a typo or a copied command line can never send
a packet to a real address.

The guard reads addresses the way the C library does (``inet_aton``): ``2130706433``,
``0x7f.1`` and ``0177.0.0.1`` are all 127.0.0.1, so a hostile spelling cannot slip past a
dotted-quad check. It never resolves names (resolving would itself send a DNS query):
only ``localhost`` and the lab's own aliases are accepted. URLs with user information,
backslashes, spaces, percent-escapes or non-ASCII in the authority are refused, because
parsers disagree about where such a host begins.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from provarmor.model.errors import ProvArmorError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LAB_SUBNET = ipaddress.IPv4Network("10.213.0.0/24")
"""The lab's addresses; they exist only on the lab's bridge and inside its namespaces."""

_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_AUTHORITY_OK = re.compile(r"^[A-Za-z0-9.\-_:\[\]]+$")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`|;&)]+")
_IPV4_WORD = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_IPV6_BRACKETED = re.compile(r"\[((?:[0-9A-Fa-f]*:){2,}[0-9A-Fa-f.]*(?:%\w+)?)\]")


class ContainmentError(ProvArmorError):
    """An address is neither loopback nor a lab address."""


def _loose_ipv4_part(text: str) -> int | None:
    if re.fullmatch(r"0[xX][0-9a-fA-F]*", text):
        return int(text[2:] or "0", 16)
    if re.fullmatch(r"0[0-7]+", text):
        return int(text, 8)
    if re.fullmatch(r"[0-9]+", text):
        return int(text, 10)
    return None


def parse_loose_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address ``text`` means to ``inet_aton`` (``127.1``, ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``), or None when it is not a numeric address."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = [_loose_ipv4_part(part) for part in parts]
    if any(value is None for value in values):
        return None
    numbers = [value for value in values if value is not None]
    *head, last = numbers
    if any(value > 255 for value in head) or last >= 256 ** (4 - len(head)):
        return None
    packed = 0
    for value in head:
        packed = (packed << 8) | value
    packed = (packed << (8 * (4 - len(head)))) | last
    return ipaddress.IPv4Address(packed)


def parse_address(host: str) -> IPAddress | None:
    """The IP address a host field names, or None when it is a name.

    Accepts brackets, an IPv6 zone (``fe80::1%eth0``), a trailing dot, and the loose IPv4
    forms; IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``) are returned as IPv4."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0].rstrip(".")
    try:
        address: IPAddress = ipaddress.ip_address(text)
    except ValueError:
        loose = parse_loose_ipv4(text)
        return loose
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True, kw_only=True)
class Containment:
    """What the lab may contact: loopback, plus the lab addresses that exist right now.

    ``lab_addresses`` are the addresses of the namespaces this run created; ``aliases`` maps
    lab host names (``c2.lab``) to them; ``fallback`` is where rewritten traffic goes."""

    lab_addresses: frozenset[IPAddress] = frozenset()
    aliases: Mapping[str, str] = field(default_factory=dict)
    fallback: str = "127.0.0.1"

    def is_allowed_address(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv4Address):
            return address in _LOOPBACK_V4 or address in self.lab_addresses
        return address == ipaddress.IPv6Address("::1") or address in self.lab_addresses

    def resolve(self, host: str) -> IPAddress:
        """The allowed address ``host`` names; raises :class:`ContainmentError` otherwise."""
        name = host.strip().rstrip(".").lower()
        if name in _LOOPBACK_NAMES:
            return ipaddress.IPv4Address("127.0.0.1")
        if name in self.aliases:
            name = self.aliases[name]
        address = parse_address(name)
        if address is None:
            raise ContainmentError(
                f"host name {host!r} is not a lab name (names are never looked up)"
            )
        if not self.is_allowed_address(address):
            raise ContainmentError(f"{address} is neither loopback nor a lab address")
        return address

    def is_allowed_host(self, host: str) -> bool:
        try:
            self.resolve(host)
        except ContainmentError:
            return False
        return True

    def rewrite_host(self, host: str) -> str:
        """``host`` itself when allowed, else the fallback."""
        return host if self.is_allowed_host(host) else self.fallback

    def check_url(self, url: str) -> str:
        """The host of ``url`` when the URL is allowed; raises :class:`ContainmentError`."""
        parts = urlsplit(url.strip())
        authority = parts.netloc
        if not authority:
            raise ContainmentError(f"{url!r} names no host")
        if not authority.isascii() or not _AUTHORITY_OK.match(authority):
            raise ContainmentError(f"{url!r}: user information or odd characters in the host")
        host = parts.hostname or ""
        try:
            _ = parts.port
        except ValueError as error:
            raise ContainmentError(f"{url!r}: bad port") from error
        self.resolve(host)
        return host

    def rewrite_url(self, url: str) -> str:
        """``url`` unchanged when allowed; otherwise the same path and query on the fallback
        host (user information and the original host dropped)."""
        try:
            self.check_url(url)
        except ContainmentError:
            parts = urlsplit(url.strip())
            host = self.fallback if ":" not in self.fallback else f"[{self.fallback}]"
            scheme = parts.scheme or "http"
            return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))
        return url

    def addresses_in(self, text: str) -> list[str]:
        """Every URL, dotted IPv4 address and bracketed IPv6 address in a command line."""
        found = [match.group(0) for match in _URL.finditer(text)]
        stripped = _URL.sub(" ", text)
        found += [match.group(0) for match in _IPV4_WORD.finditer(stripped)]
        found += [match.group(1) for match in _IPV6_BRACKETED.finditer(stripped)]
        return found

    def violations(self, text: str) -> list[str]:
        """The URLs and addresses in ``text`` that are not allowed."""
        bad = []
        for item in self.addresses_in(text):
            allowed = self._item_allowed(item)
            if not allowed:
                bad.append(item)
        return bad

    def _item_allowed(self, item: str) -> bool:
        if "://" in item:
            try:
                self.check_url(item)
            except ContainmentError:
                return False
            return True
        return self.is_allowed_host(item)

    def rewrite_command(self, text: str) -> str:
        """``text`` with every disallowed URL and address replaced (URLs keep their path)."""
        text = _URL.sub(lambda match: self.rewrite_url(match.group(0)), text)
        text = _IPV4_WORD.sub(lambda match: self.rewrite_host(match.group(0)), text)
        return _IPV6_BRACKETED.sub(
            lambda match: match.group(0) if self.is_allowed_host(match.group(1)) else self.fallback,
            text,
        )

    def assert_contained(self, texts: Iterable[str]) -> None:
        """Raise :class:`ContainmentError` naming the first disallowed address in ``texts``."""
        for text in texts:
            bad = self.violations(text)
            if bad:
                raise ContainmentError(f"not contained: {bad[0]!r} in {text[:200]!r}")
