"""Building blocks of the bpftrace program text: the record ``printf``s in the wire format of
:mod:`provarmor.sources.ebpf.wire`, BTF access paths, and the enter/exit probe pair."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from provarmor.sources.ebpf.wire import COMMON_FIELDS, LAYOUTS

START = "curtask->group_leader->start_boottime"
EXCLUDED_PID_SLOTS = 4
"""Positional parameters ``$1``..``$4``: pids never traced. ``$5`` is bpftrace itself."""
FILTER = " && ".join(f"pid != ${slot}" for slot in range(1, EXCLUDED_PID_SLOTS + 2))
AT_FDCWD = -100
RECORDS = "@records"
"""Counts every record the program prints; printed at END so the decoder can tell how many
never reached it (bpftrace 0.17 drops the records it reads while handling SIGINT)."""
_COUNT = f"{RECORDS} = count();"
_TAB = "\\t"


@dataclass(frozen=True, slots=True)
class Block:
    """Probes that belong together: the tracepoints they need (all or none are loaded), the
    maps they use (cleared at END) and their text."""

    needs: tuple[str, ...]
    maps: tuple[str, ...]
    text: str


def fill(template: str, **tokens: object) -> str:
    """Replace ``%NAME%`` tokens (bpftrace itself uses ``$`` and braces)."""
    text = template
    for name, value in tokens.items():
        text = text.replace(f"%{name}%", str(value))
    return text.replace("%FILTER%", FILTER).replace("%START%", START)


def emit(
    kind: str, values: Sequence[str], text: str = '""', *, start: str = START, counted: bool = True
) -> str:
    """A ``printf`` of one header line of ``kind`` (fields in :data:`LAYOUTS` order), counted
    in :data:`RECORDS` unless ``counted`` is false."""
    layout = LAYOUTS[kind]
    if len(values) != len(layout):
        raise ValueError(f"{kind} takes {len(layout)} values, got {len(values)}")
    formats = [kind, "%lu", "%d", "%d", "%lu", *(["%ld"] * len(values)), "%s"]
    assert len(formats) == 2 + len(COMMON_FIELDS) + len(layout)
    arguments = ", ".join(["$t", "tid", "pid", start, *values, text])
    printf = f'printf("{_TAB.join(formats)}\\n", {arguments});'
    return f"{printf} {_COUNT}" if counted else printf


def emit_string(text: str) -> str:
    """A ``printf`` of one ``s`` line belonging to the header printed next in this probe."""
    return f'printf("s\\t%d\\t%lu\\t%s\\n", tid, $t, {text}); {_COUNT}'


def file_of(fd: str) -> str:
    return f"(*(curtask->files->fdt->fd + {fd}))"


def sock_of(fd: str) -> str:
    return f"((struct socket *){file_of(fd)}->private_data)->sk"


def tracepoint(name: str) -> str:
    group = "sched" if name.startswith("sched_") else "syscalls"
    return f"tracepoint:{group}:{name}"


def needs(*names: str) -> tuple[str, ...]:
    return tuple(tracepoint(name).removeprefix("tracepoint:") for name in names)


def enter_exit(
    syscall: str,
    *,
    park: dict[str, str],
    exit_body: str,
    guard: str = "",
    prelude: str = "",
) -> Block:
    """A ``sys_enter`` probe parking ``park`` (map -> expression) and its ``sys_exit`` probe.

    ``prelude`` statements run first at entry, then nothing is parked unless ``guard`` holds
    (work done at entry is off the exit probe's 512-byte stack). The first map parked is the
    exit probe's predicate, so it must never hold 0.
    """
    maps = tuple(park)
    stores = "\n".join(f"  {name}[tid] = {value};" for name, value in park.items())
    if guard:
        stores = f"  if ({guard}) {{\n{stores}\n  }}"
    if prelude:
        stores = f"{prelude}\n{stores}"
    deletes = "\n".join(f"  delete({name}[tid]);" for name in maps)
    text = (
        f"{tracepoint('sys_enter_' + syscall)} /{FILTER}/\n{{\n{stores}\n}}\n\n"
        f"{tracepoint('sys_exit_' + syscall)} /{maps[0]}[tid]/\n{{\n  $t = nsecs;\n"
        f"{exit_body}\n{deletes}\n}}"
    )
    return Block(needs("sys_enter_" + syscall, "sys_exit_" + syscall), maps, text)


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def prefix_words(pointer: str, prefixes: Sequence[str]) -> str:
    """Statements reading the first bytes of the user string at ``pointer`` into ``$w0``,
    ``$w1``... once, as many 8-byte words as the longest prefix needs (each read costs a stack
    slot, so they are shared by every :func:`prefix_test`)."""
    longest = max((len(prefix.encode()) for prefix in prefixes), default=0)
    words = (longest + 7) // 8
    return " ".join(f"$w{i} = *(uint64 *)({pointer} + {8 * i});" for i in range(words))


def prefix_test(prefix: str) -> str:
    """A test that the string read by :func:`prefix_words` starts with ``prefix``, comparing
    8 bytes at a time as integers (bpftrace 0.17 puts string literals on the 512-byte stack)."""
    data = prefix.encode()
    if not data:
        return "1"
    tests = []
    for index, offset in enumerate(range(0, len(data), 8)):
        chunk = data[offset : offset + 8]
        value = int.from_bytes(chunk, "little")
        word = f"$w{index}"
        if len(chunk) < 8:
            word = f"({word} & {(1 << (8 * len(chunk))) - 1:#x})"
        tests.append(f"{word} == {value:#x}")
    return " && ".join(tests)
