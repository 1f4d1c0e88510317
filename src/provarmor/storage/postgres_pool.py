"""The PostgreSQL connections of one process: a small pool per database, shared by every
store on it (a fleet's host graphs, a schema each, and the findings store).

A store checks a connection out for one statement or one transaction and gives it back
straight after, so a process needs :data:`DEFAULT_POOL_SIZE` connections however many hosts
it serves, not one per host (the server's ``max_connections`` is typically 100). A pool
belongs to the process that made it (a forked child makes its own) and closes its
connections when the last store using it closes.

Each pooled connection remembers the ``search_path`` last set on it and the session's
staging tables, so a store sets its schema only when the connection last served another
one. The schema is set by a session ``SET`` in autocommit, outside any transaction: a
``SET LOCAL`` would need a transaction around every read (four round trips for one
``SELECT``), and a session ``SET`` made inside a transaction would be undone by its
rollback without the pool knowing. Server-side prepared statements stay correct across the
switch: PostgreSQL re-parses a prepared statement when ``search_path`` has changed since
its last use.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import pq

DEFAULT_POOL_SIZE = 4
CHECKOUT_TIMEOUT_S = 30.0
"""How long a statement waits for a free connection before failing."""

Row = tuple[object, ...]


class PoolExhausted(Exception):
    """No connection came free within :data:`CHECKOUT_TIMEOUT_S`."""


@dataclass(eq=False)
class PooledConnection:
    """One connection and the session state the stores rely on."""

    connection: psycopg.Connection[Row]
    schema: str | None = None
    """The ``search_path`` set on the session (``None``: not set by a store yet)."""
    stages: set[str] = field(default_factory=set)
    """The session's staging tables (temporary, so a connection's own)."""


class ConnectionPool:
    """At most :attr:`size` connections to one database, made when first needed."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo = conninfo
        self.size = size
        self._idle: list[PooledConnection] = []
        self._open = 0
        self._changed = threading.Condition()
        self.users = 0
        """Stores using the pool; the last to close it closes the connections."""
        self.waits = 0
        """Checkouts that found every connection busy and waited."""

    def take(self, schema: str) -> PooledConnection:
        """A connection for the caller alone until it calls :meth:`give_back` (an idle one
        that last served ``schema`` when there is one); :class:`PoolExhausted` after
        :data:`CHECKOUT_TIMEOUT_S` with every connection busy."""
        deadline = time.monotonic() + CHECKOUT_TIMEOUT_S
        with self._changed:
            if not self._idle and self._open >= self.size:
                self.waits += 1
            while not self._idle and self._open >= self.size:
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    raise PoolExhausted(
                        f"no free connection in {CHECKOUT_TIMEOUT_S:.0f} s "
                        f"(all {self.size} busy; raise pool_size= in the URL)"
                    )
            if self._idle:
                same = [i for i, held in enumerate(self._idle) if held.schema == schema]
                return self._idle.pop(same[-1] if same else -1)
            self._open += 1  # the slot is taken before connecting, outside the lock
        try:
            return PooledConnection(psycopg.connect(self._conninfo, autocommit=True))
        except BaseException:
            self._forget()
            raise

    def give_back(self, held: PooledConnection) -> None:
        """Return ``held``; one left in a transaction or broken is closed instead."""
        if held.connection.info.transaction_status != pq.TransactionStatus.IDLE:
            held.connection.close()
            self._forget()
            return
        with self._changed:
            self._idle.append(held)
            self._changed.notify()

    def _forget(self) -> None:
        with self._changed:
            self._open -= 1
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for held in idle:
            held.connection.close()


_pools: dict[tuple[int, str], ConnectionPool] = {}
_pools_lock = threading.Lock()


def share_pool(conninfo: str, size: int) -> ConnectionPool:
    """This process's pool for ``conninfo`` (made with ``size`` connections, grown when a
    later store asks for more), with one more user: call :func:`release` once with it."""
    with _pools_lock:
        key = (os.getpid(), conninfo)
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ConnectionPool(conninfo, size)
        pool.size = max(pool.size, size)
        pool.users += 1
        return pool


def release(pool: ConnectionPool) -> None:
    """One user fewer; the last closes the pool's connections."""
    with _pools_lock:
        pool.users -= 1
        if pool.users > 0:
            return
        for key, shared in list(_pools.items()):
            if shared is pool:
                del _pools[key]
    pool.close()
