"""Seeded variation: names, paths, ports and timing that differ from one run to the next.

Every string a scenario leaves behind (dropped file names, directories, users, URL paths,
ports) comes from a :class:`Names` built on the run's seed, so two seeds give different
strings and a detector cannot learn the lab by heart, while one seed always replays the
same run.
"""

from __future__ import annotations

import random
import string

_WORDS = (
    "cache",
    "sync",
    "update",
    "agent",
    "helper",
    "monitor",
    "daemon",
    "worker",
    "index",
    "store",
    "report",
    "backup",
    "metric",
    "probe",
    "relay",
    "queue",
    "socket",
    "session",
    "render",
    "locale",
    "module",
    "plugin",
    "config",
    "journal",
    "notify",
    "portal",
    "stack",
    "vector",
    "bridge",
    "kernel",
    "policy",
    "signal",
    "tracker",
    "mirror",
    "engine",
    "shadow",
)
_SYSTEM_LIKE = (
    "kworker",
    "kswapd",
    "ksoftirqd",
    "dbus-daemon",
    "systemd-udevd",
    "rsyslogd",
    "irqbalance",
    "polkitd",
    "atd",
    "cupsd",
    "avahi-daemon",
    "udisksd",
    "crond",
    "gvfsd",
    "sd-pam",
)
_ALNUM = string.ascii_lowercase + string.digits


class Names:
    """Names for one run. Every call draws from the run's seeded generator, and names are
    never repeated within a run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311  (variation, not secrecy)
        self._used: set[str] = set()
        self._ports: set[int] = set()

    @property
    def rng(self) -> random.Random:
        """The run's generator, for choices a scenario makes itself (order, counts)."""
        return self._rng

    def token(self, length: int = 6) -> str:
        """Random lower-case letters and digits."""
        while True:
            text = "".join(self._rng.choice(_ALNUM) for _ in range(length))
            if text not in self._used:
                self._used.add(text)
                return text

    def word(self) -> str:
        """A plausible software word with a short random suffix (``sync4f``)."""
        while True:
            text = f"{self._rng.choice(_WORDS)}{self._rng.randrange(10, 99)}"
            if text not in self._used:
                self._used.add(text)
                return text

    def hidden(self) -> str:
        """A dot-name as droppers use (``.cache-k3x9``)."""
        return f".{self._rng.choice(_WORDS)}-{self.token(4)}"

    def system_like(self) -> str:
        """A process name that imitates a system daemon (``kworker-7q``)."""
        return f"{self._rng.choice(_SYSTEM_LIKE)}-{self.token(2)}"

    def user(self, prefix: str) -> str:
        """A user name: ``prefix`` and a word (at most 16 characters, valid for useradd)."""
        return f"{prefix}{self.word()}"[:16]

    def port(self, low: int = 20000, high: int = 60000) -> int:
        """A TCP/UDP port not handed out before in this run."""
        while True:
            number = self._rng.randrange(low, high)
            if number not in self._ports:
                self._ports.add(number)
                return number

    def jitter(self, low: float, high: float) -> float:
        """A pause in seconds between ``low`` and ``high``."""
        return self._rng.uniform(low, high)

    def pick(self, options: tuple[str, ...]) -> str:
        """One of ``options``."""
        return self._rng.choice(options)

    def host_octets(self, count: int) -> list[int]:
        """``count`` distinct last octets for lab addresses (never .0, .1 or .255)."""
        return self._rng.sample(range(10, 250), count)
