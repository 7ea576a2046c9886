"""How every citysoc SQLite file is opened and written, in one place.

Each store (events, dead letters, soc.db, assets, playbook runs and jobs, scheduled-rule
state, bus checkpoints) keeps its own file, and all of them want the same things: WAL
(readers run beside the one writer), ONE busy timeout (:data:`BUSY_TIMEOUT_S`: how long a
second process, such as the CLI beside ``serve``, waits for the write lock before
failing), connections usable from the thread pool, autocommit so transactions are
explicit, and write transactions that take the write lock up front (``BEGIN IMMEDIATE``)
so read-then-write sequences cannot interleave or deadlock on lock upgrade.

Example::

    db = Database(path, pragmas=("foreign_keys = ON",), row_factory=sqlite3.Row)
    with db.transaction() as c:
        c.execute("INSERT INTO t(x) VALUES (?)", (1,))
    rows = db.reader().execute("SELECT x FROM t").fetchall()
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

__all__ = ["BUSY_TIMEOUT_S", "connect", "transaction", "inserted_id", "Database"]

BUSY_TIMEOUT_S = 30.0
"""How long any connection waits for another connection's lock before ``database is locked``."""

RowFactory = Callable[[sqlite3.Cursor, tuple[Any, ...]], Any]


def connect(path: str | Path, *, writer: bool = True, synchronous: str = "NORMAL", pragmas: Sequence[str] = (),
            row_factory: RowFactory | None = None) -> sqlite3.Connection:
    """A connection to ``path`` as every store wants it (see the module docstring).

    ``writer=True`` switches the file to WAL (an error if it cannot: WAL does not work
    on network filesystems) and sets ``synchronous`` (``NORMAL``: a crash of the process
    loses nothing committed; ``FULL``: a power cut neither); ``writer=False`` gives a
    ``query_only`` reader. ``pragmas`` (``"foreign_keys = ON"``) run before the journal
    mode is set, so file-creation pragmas such as ``auto_vacuum`` still take effect.
    """
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
    except sqlite3.OperationalError as exc:
        raise RuntimeError(f"cannot open {path}: {exc}; check the data directory exists and is writable") from exc
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    for p in pragmas:
        conn.execute(f"PRAGMA {p}")
    if writer:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() not in ("wal", "memory"):
            conn.close()
            raise sqlite3.OperationalError(f"{path}: cannot switch to WAL mode (got {mode}); "
                                           "is it on a network filesystem?")
        if synchronous.upper() not in ("NORMAL", "FULL", "OFF", "EXTRA"):
            raise ValueError(f"synchronous={synchronous!r}")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    else:
        conn.execute("PRAGMA query_only = ON")
    if row_factory is not None:
        conn.row_factory = row_factory
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, lock: AbstractContextManager[Any]) -> Iterator[sqlite3.Connection]:
    """A write transaction on ``conn`` under ``lock`` (the process's writer lock):
    ``BEGIN IMMEDIATE``, ``COMMIT`` on success, ``ROLLBACK`` on any exception."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")


def inserted_id(cur: sqlite3.Cursor) -> int:
    """The rowid the ``INSERT`` on ``cur`` made (``lastrowid`` is typed optional: it is
    ``None`` only before any insert, which would be a bug in the caller)."""
    rowid = cur.lastrowid
    if rowid is None:
        raise RuntimeError("no row was inserted")
    return int(rowid)


class Database:
    """One SQLite file: one writer connection behind a lock, one reader per thread.

    ``writer`` and ``lock`` are public for stores that run several statements under one
    lock; :meth:`transaction` is the usual way to write, :meth:`reader` to read.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", pragmas: Sequence[str] = (),
                 row_factory: RowFactory | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._opts: dict[str, Any] = {"synchronous": synchronous, "pragmas": tuple(pragmas), "row_factory": row_factory}
        self.lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.writer = connect(self.path, writer=True, **self._opts)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction on the writer (see :func:`transaction`)."""
        return transaction(self.writer, self.lock)

    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (made on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, writer=False, pragmas=self._opts["pragmas"], row_factory=self._opts["row_factory"])
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        """Close every reader and the writer."""
        with self._readers_lock:
            for c in self._readers:
                try:
                    c.close()
                except sqlite3.ProgrammingError:
                    pass  # made in a thread that is gone; the OS closes it
            self._readers.clear()
        with self.lock:
            self.writer.close()
