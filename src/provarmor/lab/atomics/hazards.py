"""The hazards the safety screen names, and its first pass: patterns over raw text.

The patterns see everything, also inside quotes, ``python -c`` code and payload scripts, so
they catch what the command-by-command pass cannot read (``os.system("reboot")``). A match is
a :class:`Finding`; false alarms only cost a skipped test. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Hazard(StrEnum):
    POWER = "power"
    FORK_BOMB = "fork-bomb"
    ENDLESS = "endless"
    DELETE = "delete"
    WRITE = "write"
    BLOCK_DEVICE = "block-device"
    KILL = "kill"
    FIREWALL = "firewall"
    SWAP = "swap"
    KERNEL_MODULE = "kernel-module"
    KERNEL_SETTING = "kernel-setting"
    ACCOUNTS = "accounts"
    SSHD = "sshd"
    LOGGING = "logging"
    SERVICES = "services"
    PRELOAD = "preload"
    CLOCK = "clock"
    MOUNT = "mount"
    PACKAGES = "packages"
    TRUST_STORE = "trust-store"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class Finding:
    hazard: Hazard
    detail: str

    def __str__(self) -> str:
        return f"{self.hazard}: {self.detail}"


def _word(names: str) -> str:
    """A regex for any of ``names`` (``a|b``) as a command word, also after a ``/``."""
    return rf"(?<![\w.\-])(?:{names})(?![\w\-])"


_PATTERNS: tuple[tuple[Hazard, re.Pattern[str]], ...] = tuple(
    (hazard, re.compile(pattern, re.MULTILINE))
    for hazard, pattern in (
        (Hazard.POWER, _word("reboot|shutdown|halt|poweroff|kexec")),
        (Hazard.POWER, _word("init|telinit") + r"\s+[0156sS](?![\w.])"),
        (Hazard.POWER, r"sysrq"),
        (
            Hazard.POWER,
            r"systemctl\s+(?:-\S+\s+)*(?:reboot|poweroff|halt|kexec|suspend|hibernate|"
            r"hybrid-sleep|soft-reboot|rescue|emergency)\b",
        ),
        (Hazard.FORK_BOMB, r"([\w:]+)\s*\(\s*\)\s*\{[^}]*?\1\s*\|\s*\1\s*&"),
        (Hazard.FORK_BOMB, r"\bfork\b[^\n]{0,20}\bwhile\b[^\n]{0,10}\bfork\b"),
        (Hazard.FORK_BOMB, r"while\s*\(?\s*(?:True|1|true)\s*\)?\s*:?\s*\{?\s*os\.fork\("),
        (Hazard.ENDLESS, r"\bwhile\s+(?:true|:|\[\s*1\s*\]|\(\(\s*1\s*\)\))\s*;?\s*do\b"),
        (Hazard.ENDLESS, _word("yes") + r"\s*(?:>|&|;|$)"),
        (Hazard.ENDLESS, r"\bsleep\s+infinity\b|\btail\s+-[a-zA-Z]*f|\bfor\s*\(\(\s*;\s*;\s*\)\)"),
        (
            Hazard.BLOCK_DEVICE,
            _word(r"mkfs(?:\.\w+)?|mke2fs|mkswap|wipefs|fdisk|sfdisk|cfdisk|parted|gdisk")
            + r"|"
            + _word("sgdisk|blkdiscard|hdparm"),
        ),
        (Hazard.BLOCK_DEVICE, r"\bof=/dev/(?!null\b|zero\b|stdout\b|stderr\b)"),
        (Hazard.SWAP, _word("swapoff")),
        (
            Hazard.KERNEL_MODULE,
            _word("insmod|rmmod|modprobe|depmod|kldload|kldunload|kextload|kextunload"),
        ),
        (Hazard.KERNEL_SETTING, _word("setenforce") + r"|/proc/sys/"),
        (
            Hazard.KERNEL_SETTING,
            _word("sysctl") + r"\s+(?:-\S+\s+)*(?:-w\b|--write|-p\b|--load|--system|\S+=)",
        ),
        (Hazard.PRELOAD, r"ld\.so\.preload|" + _word("ldconfig")),
        (Hazard.SSHD, r"sshd_config"),
        (Hazard.LOGGING, r"journalctl\s+[^\n;|&]*--(?:vacuum|rotate|flush|relinquish)"),
        (
            Hazard.CLOCK,
            _word("timedatectl")
            + r"\s+set-|"
            + _word("ntpdate|rdate")
            + r"|\bhwclock\s+[^\n;|&]*(?:--set|-w\b|--systohc|--hctosys|-s\b|--adjust)",
        ),
        (Hazard.TRUST_STORE, _word("update-ca-certificates|update-ca-trust|certctl")),
        (Hazard.ACCOUNTS, _word("chpasswd|vipw|vigr|pwconv|pwunconv|grpconv|newusers")),
        (Hazard.ACCOUNTS, r"\bsudo\s+-S\b"),  # password guessing: sudo mails root each miss
        (
            Hazard.SERVICES,
            _word("systemd-run|update-rc\\.d|chkconfig|rc-update|sysrc|launchctl|invoke-rc\\.d"),
        ),
        (Hazard.KILL, _word("killall5?|pkill|skill|slay")),
        (
            Hazard.FIREWALL,
            _word("iptables-restore|ip6tables-restore|pfctl|firewall-cmd|ebtables|arptables")
            + r"|"
            + _word("ufw")
            + r"\s+(?:disable|reset|delete|deny|allow|reject|limit|insert|prepend|default|"
            r"logging|reload)|\bnft\s+(?:flush|delete|add|insert|replace|create|destroy|-f)\b",
        ),
    )
)


def pattern_findings(text: str) -> list[Finding]:
    """The raw-text pass alone (for payloads that are not shell: Python, C)."""
    found = []
    for hazard, pattern in _PATTERNS:
        match = pattern.search(text)
        if match is not None:
            found.append(Finding(hazard, f"{match.group(0).strip()[:80]!r}"))
    return found
