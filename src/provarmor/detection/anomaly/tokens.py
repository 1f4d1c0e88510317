"""Tokenisation: command lines, paths and endpoints -> normalised tokens (pure functions).

Random-looking parts (hex, uuids, numbers, base64-ish blobs, random temp names) become
placeholders (``<hex>``, ``<uuid>``, ``<num>``, ``<b64>``, ``<rand>``); a name, or a dash- or
dot-separated part of one, made of lower-case letters and a short number (``relay80``,
``labstore12``: generated service, package and user names) becomes ``<name>``, and other digit
runs inside words become ``<num>`` (``lib64`` -> ``lib<num>``). Two runs of the same program,
or two generated names of one kind, then produce the same tokens; user home directories become
``~``; user ids become classes. Nothing here raises: any string is a valid input.
"""

from __future__ import annotations

import functools
import ipaddress
import re

MAX_TOKEN_CHARS = 80
MAX_ARGS = 24

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]{8,}")
_NUM = re.compile(r"[+-]?\d+(?:\.\d+)?")
_B64 = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
_HOME = re.compile(r"^/home/[^/]+")
_RUN_USER = re.compile(r"^/run/user/\d+")
_PART_SPLIT = re.compile(r"([-_.:@,=+])")
_SHELL_SPLIT = re.compile(r"[\s;|&<>()`'\"]+")
_TEMP_NAME = re.compile(r"tmp[a-zA-Z0-9_]{6,}")
_DIGITS = re.compile(r"\d+")
_GENERATED_NAME = re.compile(r"([a-z]{3,})\d{1,3}")
_VERSIONED = frozenset(
    [
        "python",
        "perl",
        "ruby",
        "php",
        "lua",
        "node",
        "java",
        "pip",
        "gcc",
        "llvm",
        "clang",
        "sha",
        "utf",
        "ext",
        "lib",
        "gpg",
        "http",
        "tls",
        "ssl",
        "icu",
        "tcl",
        "ncurses",
        "amd",
        "arm",
        "aarch",
    ]
)
"""Words that carry a version number (``python3``), not generated names (``relay80``)."""
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d+)?")


def _transitions(text: str) -> int:
    """How often the text switches between letters and digits (``a1b2`` -> 3)."""
    count = 0
    previous = None
    for char in text:
        kind = char.isdigit()
        if previous is not None and kind != previous and char.isalnum():
            count += 1
        if char.isalnum():
            previous = kind
    return count


def normalize_word(word: str) -> str:
    """One path component or argument part -> itself or a placeholder."""
    if not word:
        return word
    if _UUID.fullmatch(word):
        return "<uuid>"
    if _NUM.fullmatch(word):
        return "<num>"
    if _HEX.fullmatch(word) and any(c.isdigit() for c in word):
        return "<hex>"
    if len(word) >= 16 and _B64.fullmatch(word) and _transitions(word) >= 3:
        return "<b64>"
    if len(word) >= 4 and _transitions(word) >= 2:
        return "<rand>"
    generated = _GENERATED_NAME.fullmatch(word)
    if generated is not None and generated.group(1) not in _VERSIONED:
        return "<name>"
    return _DIGITS.sub("<num>", word)


@functools.lru_cache(maxsize=1 << 16)
def _normalize_component(component: str) -> str:
    if _TEMP_NAME.fullmatch(component):
        return "tmp<rand>"
    generated = _GENERATED_NAME.fullmatch(component)
    if generated is not None and generated.group(1) not in _VERSIONED:
        return "<name>"
    if _UUID.fullmatch(component):
        return "<uuid>"
    if len(component) >= 16 and _B64.fullmatch(component) and _transitions(component) >= 3:
        return "<b64>"
    parts = _PART_SPLIT.split(component)
    return "".join(normalize_word(part) if i % 2 == 0 else part for i, part in enumerate(parts))


def normalize_path(path: str) -> str:
    """``/home/alice/.cache/tmpa1b2c3d4/x.log`` -> ``~/.cache/<rand>/x.log``."""
    path = _HOME.sub("~", path, count=1)
    path = _RUN_USER.sub("/run/user/<num>", path, count=1)
    parts = path.split("/")
    return _clip("/".join(_normalize_component(part) for part in parts))


@functools.lru_cache(maxsize=1 << 12)
def ip_class(ip: str) -> str:
    """``loopback``, ``private``, ``linklocal``, ``multicast``, ``public`` or ``unknown``
    (remembered: a host talks to few addresses, and parsing one is slow)."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "unknown"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "linklocal"
    if address.is_multicast:
        return "multicast"
    if address.is_private or address.is_unspecified:
        return "private"
    return "public"


def port_token(port: int) -> str:
    """Well-known ports (< 1024) stay; registered ones (1024-32767, where generated services
    listen) are one class, ephemeral ones (>= 32768) another."""
    if port <= 0:
        return "<none>"
    if port >= 32768:
        return "<ephemeral>"
    if port >= 1024:
        return "<registered>"
    return str(port)


def identity_class(user_id: str) -> str:
    """A user or group id as ``root`` (0), ``system`` (1-999) or ``user`` (1000 and above):
    the ids of accounts created on a host differ from host to host."""
    if not user_id.isdigit():
        return "<name>"
    number = int(user_id)
    if number == 0:
        return "root"
    return "system" if number < 1000 else "user"


def endpoint_token(*, verb: str, ip: str, port: int, address: str = "") -> str:
    """``connect private:8443``, ``accept loopback:22``, ``connect unix:/run/dbus/<rand>``."""
    if address and not ip:
        return _clip(f"{verb} unix:{normalize_path(address)}")
    return f"{verb} {ip_class(ip)}:{port_token(port)}"


@functools.lru_cache(maxsize=1 << 16)
def argument_token(argument: str) -> str:
    """One argv element -> a token (paths as paths, addresses as classes, blobs as placeholders)."""
    if argument.startswith(("/", "~/", "./")):
        return normalize_path(argument)
    if _IPV4.fullmatch(argument):
        host, _, port = argument.partition(":")
        return f"{ip_class(host)}:{port_token(int(port))}" if port else ip_class(host)
    if "://" in argument:
        scheme, _, rest = argument.partition("://")
        host, _, path = rest.partition("/")
        return _clip(f"{scheme}://{argument_token(host)}/{normalize_path(path)}")
    if "," in argument:
        return _clip(",".join(argument_token(part) for part in argument.split(",")))
    if "=" in argument and argument.startswith("-"):
        flag, _, value = argument.partition("=")
        return _clip(f"{flag}={argument_token(value)}")
    return _clip(_normalize_component(argument))


def argument_tokens(args: tuple[str, ...], command_line: str) -> list[str]:
    """Tokens of argv[1:] (from ``args`` when known, else the command line split on blanks)."""
    words = list(args) if args else command_line.split()
    pieces = [piece for word in words[1:] for piece in _SHELL_SPLIT.split(word) if piece]
    return [argument_token(piece) for piece in pieces[:MAX_ARGS]]


def _clip(token: str) -> str:
    return token if len(token) <= MAX_TOKEN_CHARS else token[:MAX_TOKEN_CHARS] + "<...>"
