"""What happened: the closed set of event actions and the ECS category of each.

How each action fills the event (every source must follow this):

* ``fork``: ``process`` is the NEW child (its own entity id, pid and start time, the
  executable it inherited); ``process.parent`` is the forking process.
* ``exec``: ``process`` is the process after the exec, with the SAME entity id as before
  (identity is host + boot + pid + start time; exec does not change it), the new
  ``executable``/``args``; ``process.parent`` when known; ``file.path`` the program run.
* ``exit``: ``process`` exited.
* ``open``/``read``/``write``/``create``/``delete``/``truncate``/``chmod``/``chown``/
  ``mmap_exec``: ``file.path`` (absolute where the source can resolve it).
  ``open`` is an open for reading; an open for writing is ``write``; one that created the
  file is ``create``.
* ``rename``/``link``: ``file.original_path`` -> ``file.path``.
* network actions: ``destination`` is ALWAYS the remote peer and ``source`` the local
  endpoint; ``network.direction`` is ``egress`` when this process initiated (connect, send)
  and ``ingress`` otherwise (accept, recv). ``bind``/``listen`` set ``source`` only.
* ``setuid``/``setgid``: ``target.user`` is the new identity.
* ``ptrace``/``kill``: ``target.process`` is the process acted upon.
* ``module_load``: ``file.path`` is the module file (or its name), ``file.type`` ``module``.
* ``memfd_create``: ``file.path`` is ``memfd:NAME``, ``file.type`` ``memfd``.
* ``running``: not an act but what ``/proc`` showed when the sensor started: the process
  was already running then (a snapshot, ECS ``event.kind`` state). ``process`` as ``/proc``
  showed it, with ``process.parent`` and ``process.tty``; ``source``, when set, a socket it
  listened on; ``destination``, when set, the peer of a TCP connection it had accepted.
  Emitted once per process, ancestors first, before that process's own events. Only the
  lineage context and the graph's process tree use it: no rule or model sees it.
* ``gap``: the sensor lost events; ``process`` may be empty (entity id ``""``) for a
  host-wide loss; ``event.count`` is how many were lost when known.
* A failed syscall is still an event, with ``event.outcome`` ``failure``.

Host-log actions (sshd, sudo, su, PAM, useradd, cron ... from journald or syslog): ``process``
is the program that logged (``name``, ``pid``), ``message`` the logged text and ``user`` who:

* ``authenticate``: a login or password check; ``user.name`` the account tried,
  ``source`` the remote address (when remote), ``authentication.method`` (``password``,
  ``publickey`` ...), ``event.outcome``, ``event.reason`` (``invalid user`` ...), and
  ``event.count`` the attempts one line reports (``3 incorrect password attempts``).
* ``session_start``/``session_end``: ``user.name`` the session's account.
* ``disconnect``: a connection ended (``event.reason``: why, ``preauth`` when before login).
* ``run_as``: sudo or su; ``user.name`` who asked, ``user.target.name`` whom they ran as,
  ``target.process.command_line`` the command (sudo); a refusal has outcome ``failure``.
* ``user_create``/``user_change``/``user_delete``: ``user.target`` is the account (its
  ``id`` is the uid where the log gives it); ``event.reason`` says what changed.
* ``scheduled_run``: cron ran ``target.process.command_line`` as ``user.name``.
* ``log``: any other logged line (the text is in ``message``).
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """``event.action`` values. Importers and sensors map their native names onto these."""

    EXEC = "exec"
    FORK = "fork"
    EXIT = "exit"
    OPEN = "open"
    READ = "read"
    WRITE = "write"
    CREATE = "create"
    DELETE = "delete"
    RENAME = "rename"
    LINK = "link"
    CHMOD = "chmod"
    CHOWN = "chown"
    TRUNCATE = "truncate"
    CONNECT = "connect"
    ACCEPT = "accept"
    BIND = "bind"
    LISTEN = "listen"
    SEND = "send"
    RECV = "recv"
    SETUID = "setuid"
    SETGID = "setgid"
    PTRACE = "ptrace"
    KILL = "kill"
    MODULE_LOAD = "module_load"
    MEMFD_CREATE = "memfd_create"
    MMAP_EXEC = "mmap_exec"
    RUNNING = "running"
    """Already running when the sensor started (read from ``/proc``): a snapshot, no act."""
    GAP = "gap"
    """The sensor lost events here; downstream marks what it touches as incomplete."""
    AUTHENTICATE = "authenticate"
    SESSION_START = "session_start"
    SESSION_END = "session_end"
    DISCONNECT = "disconnect"
    RUN_AS = "run_as"
    USER_CREATE = "user_create"
    USER_CHANGE = "user_change"
    USER_DELETE = "user_delete"
    SCHEDULED_RUN = "scheduled_run"
    LOG = "log"


class Category(StrEnum):
    """``event.category`` (ECS)."""

    PROCESS = "process"
    FILE = "file"
    NETWORK = "network"
    IAM = "iam"
    DRIVER = "driver"
    HOST = "host"
    AUTHENTICATION = "authentication"
    SESSION = "session"


CATEGORY_OF: dict[Action, Category] = {
    Action.EXEC: Category.PROCESS,
    Action.FORK: Category.PROCESS,
    Action.EXIT: Category.PROCESS,
    Action.OPEN: Category.FILE,
    Action.READ: Category.FILE,
    Action.WRITE: Category.FILE,
    Action.CREATE: Category.FILE,
    Action.DELETE: Category.FILE,
    Action.RENAME: Category.FILE,
    Action.LINK: Category.FILE,
    Action.CHMOD: Category.FILE,
    Action.CHOWN: Category.FILE,
    Action.TRUNCATE: Category.FILE,
    Action.CONNECT: Category.NETWORK,
    Action.ACCEPT: Category.NETWORK,
    Action.BIND: Category.NETWORK,
    Action.LISTEN: Category.NETWORK,
    Action.SEND: Category.NETWORK,
    Action.RECV: Category.NETWORK,
    Action.SETUID: Category.IAM,
    Action.SETGID: Category.IAM,
    Action.PTRACE: Category.PROCESS,
    Action.KILL: Category.PROCESS,
    Action.MODULE_LOAD: Category.DRIVER,
    Action.MEMFD_CREATE: Category.PROCESS,
    Action.MMAP_EXEC: Category.PROCESS,
    Action.RUNNING: Category.PROCESS,
    Action.GAP: Category.HOST,
    Action.AUTHENTICATE: Category.AUTHENTICATION,
    Action.SESSION_START: Category.SESSION,
    Action.SESSION_END: Category.SESSION,
    Action.DISCONNECT: Category.SESSION,
    Action.RUN_AS: Category.AUTHENTICATION,
    Action.USER_CREATE: Category.IAM,
    Action.USER_CHANGE: Category.IAM,
    Action.USER_DELETE: Category.IAM,
    Action.SCHEDULED_RUN: Category.PROCESS,
    Action.LOG: Category.HOST,
}

LOG_ACTIONS = frozenset(
    {
        Action.AUTHENTICATE,
        Action.SESSION_START,
        Action.SESSION_END,
        Action.DISCONNECT,
        Action.RUN_AS,
        Action.USER_CREATE,
        Action.USER_CHANGE,
        Action.USER_DELETE,
        Action.SCHEDULED_RUN,
        Action.LOG,
    }
)
"""The actions of host-log events (journald, syslog); the others come from sensors."""
