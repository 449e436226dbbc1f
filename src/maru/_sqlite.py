"""What maru's SQLite files (response cache, trace store) share: connections and schema checks.

- **One connection per thread** (:class:`ThreadConnections`): a SQLite connection must not be used
  by two threads at once, and a lock around one shared connection would serialise every read.
- **WAL mode** lets readers run while one writer writes, across processes; ``busy_timeout`` makes a
  writer wait for the lock instead of failing.
- **Fork safety**: a process forked after a file was opened gets fresh connections; the inherited
  ones are left alone (never used or closed in the child), as SQLite's documentation requires.
- **Schema**: each file has a ``<prefix>_meta`` table holding ``schema_version``; an empty file gets
  the schema, a file with other tables is someone else's (:class:`ForeignDatabase`).

- **Damage**: a cache or trace store found empty (0 bytes) or corrupt is not silently replaced:
  the damaged file is renamed ``<name>.damaged-<time>`` (:func:`set_aside`) with one
  :class:`DamagedFileWarning`, and a new file starts in its place (``ThreadConnections(damaged=…)``).
  A file that is not SQLite at all is never moved.

- **Errors**: :func:`error_for` turns a ``sqlite3`` error into the caller's own
  :class:`~maru.errors.MaruError`, worded the same way for every file: corrupt, locked or otherwise
  unusable (:func:`describe`), naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypeVar

__all__ = [
    "DamagedFileWarning",
    "ForeignDatabase",
    "ThreadConnections",
    "describe",
    "ensure_schema",
    "error_for",
    "file_of_url",
    "is_memory_path",
    "make_parent_folder",
    "retry_busy",
    "set_aside",
    "write_transaction",
]


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the C type cannot)."""


# Every connection opened through this module in this process, and how many forks deep we are.
# After a fork the child must not use or close what it inherited: it keeps them referenced forever.
_connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
_inherited: list[_Connection] = []
_fork_generation = 0


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1
    _inherited.extend(_connections)
    _connections.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def is_memory_path(path: str | os.PathLike[str]) -> bool:
    text = str(path)
    return text == ":memory:" or text.startswith("file::memory:")


def make_parent_folder(path: str | os.PathLike[str], error: type[Exception], what: str) -> None:
    """Create the folder a SQLite file goes in: the one rule of every SQLite-backed store, so a
    path like ``.maru/x.sqlite`` works before ``.maru/`` exists. A failure raises ``error``
    naming ``what`` (``"the trace store"``) and the path."""
    if is_memory_path(path) or not str(path):
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"cannot create the folder of {what} {path}: {exc}; choose a writable path") from exc


def file_of_url(url: str) -> str | None:
    """The file of a ``sqlite:///path`` SQLAlchemy URL (``None`` for in-memory and other databases)."""
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    database = parsed.database
    if database.startswith("file:"):  # a URI filename: the path ends where its query begins
        database = database[5:].split("?", 1)[0]
    return None if is_memory_path(database) or database in ("", ":memory:") else database


def retry_busy(step: Callable[[], object], timeout: float) -> None:
    """Run ``step``, retrying for up to ``timeout`` seconds while the database is busy.

    SQLite answers some requests with SQLITE_BUSY at once instead of calling the busy handler
    (switching the journal mode while another process opens the file, upgrading a read to a
    write), so opening a new file from several processes at once needs this loop."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def describe(exc: sqlite3.Error) -> Literal["corrupt", "locked", "other"]:
    """What a ``sqlite3`` error says about the file: damaged / not a database, held by another
    writer for too long, or something else (permissions, a folder, a full disk …)."""
    text = str(exc)
    if not isinstance(exc, sqlite3.OperationalError) or "malformed" in text or "not a database" in text:
        return "corrupt"
    if "locked" in text or "busy" in text:
        return "locked"
    return "other"


E = TypeVar("E", bound=Exception)
T = TypeVar("T")


def error_for(
    exc: sqlite3.Error,
    error: type[E],
    *,
    what: str,
    timeout: float,
    if_corrupt: str,
    if_other: str,
    timeout_option: str | None = None,
) -> E:
    """``exc`` as the caller's ``error``: one wording for every maru SQLite file, so a user reads
    the same three cases everywhere. ``what`` names the file (``"the trace store /x.sqlite"``);
    ``if_corrupt`` / ``if_other`` say what to do; a file locked longer than ``timeout`` points to
    ``timeout_option`` (``"RunStore(timeout=...)"``) when the caller has one."""
    kind = describe(exc)
    if kind == "corrupt":
        return error(f"{what} is corrupt or not a SQLite database ({exc}); {if_corrupt}")
    if kind == "locked":
        wait_longer = f"raise {timeout_option} or " if timeout_option else ""
        return error(
            f"{what} stayed locked by another writer for more than {timeout:g} s ({exc}); "
            f"{wait_longer}find the process holding it"
        )
    return error(f"cannot use {what} ({exc}); {if_other}")


class ForeignDatabase(Exception):
    """The file is a SQLite database with tables but without this schema's meta table."""


def _schema_version(conn: sqlite3.Connection, meta_table: str) -> int | None:
    try:
        row = conn.execute(f"SELECT value FROM {meta_table} WHERE name = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    try:
        return int(row[0]) if row is not None else -1
    except ValueError:
        return -1


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; on any error (or interrupt) roll back, so a crash mid-write
    leaves the file as it was."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def ensure_schema(
    conn: sqlite3.Connection,
    *,
    meta_table: str,
    version: int,
    statements: Sequence[str],
    upgrades: Mapping[int, Sequence[str]] | None = None,
) -> int:
    """The schema version stored in the file, creating the schema (``statements`` plus the meta
    table at ``version``) when the file is empty. ``-1`` means a meta table without a readable
    version. Raises :class:`ForeignDatabase` for a file that holds other tables.

    ``upgrades[n]`` holds the statements that take version ``n`` to ``n + 1``; an older file with a
    path of upgrades to ``version`` is brought up to it in one transaction, so it keeps its data."""
    found = _schema_version(conn, meta_table)
    if found is not None and found < version and upgrades and all(v in upgrades for v in range(found, version)):
        with write_transaction(conn):  # another process may have upgraded it since: read again
            found = _schema_version(conn, meta_table)
            while found is not None and found < version and found in upgrades:
                for statement in upgrades[found]:
                    conn.execute(statement)
                found += 1
                conn.execute(f"UPDATE {meta_table} SET value = ? WHERE name = 'schema_version'", (str(found),))
    if found is not None:
        return found
    # One process creates the schema; the others wait for its lock, then see it.
    with write_transaction(conn):
        found = _schema_version(conn, meta_table)
        if found is None:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if tables:
                raise ForeignDatabase(meta_table)
            conn.execute(f"CREATE TABLE {meta_table} (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                f"INSERT INTO {meta_table} (name, value) VALUES ('schema_version', ?)", (str(version),)
            )
            for statement in statements:
                conn.execute(statement)
            found = version
    return found


# --------------------------------------------------------------------------- damaged files
SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""

EMPTY_GRACE_S = 2.0
"""A 0-byte file younger than this may be one another process has just created and is about to
initialise: it is left alone. An older one lost what it held."""


class DamagedFileWarning(RuntimeWarning):
    """A maru SQLite file was found damaged, kept aside under a new name, and replaced by an empty one."""


def is_corruption(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says the file itself is damaged (SQLITE_CORRUPT, SQLITE_NOTADB) — not a
    misuse, a lock or a full disk, which replacing the file would not cure."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    text = str(exc)
    return "malformed" in text or "not a database" in text


def empty_file_damage(path: Path) -> str | None:
    """Why the file at ``path`` is damaged before anything opens it — it is empty (0 bytes) with
    nothing in its write-ahead log, so whatever it held is gone — or ``None``."""
    try:
        info = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > 0 or time.time() - info.st_mtime < EMPTY_GRACE_S:
        return None
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:  # SQLite rebuilds the file from its log
        return None
    return "was empty (0 bytes)"


def is_sqlite_file(path: Path) -> bool:
    """Whether ``path`` starts as a SQLite database does (damaged further in, perhaps): only such a
    file is set aside as damaged; any other is someone's data and is left where it is."""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def set_aside(path: Path, why: str, what: str) -> Path:
    """Rename the damaged file at ``path`` (with its ``-wal`` / ``-shm`` companions) to
    ``<name>.damaged-<time>`` and say so once, loudly (:class:`DamagedFileWarning`): the caller then
    starts an empty file there, and nothing that was in the old one is overwritten."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.rename(path, target)
    for companion in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.rename(path.with_name(path.name + companion), target.with_name(target.name + companion))
    warnings.warn(
        f"{what} {path} {why}; kept it as {target} and started a new, empty one in its place",
        DamagedFileWarning,
        stacklevel=2,
    )
    return target


class ThreadConnections:
    """Connections to one SQLite file: one per thread, fresh after a fork, WAL mode.

    ``setup(conn)`` runs on every new connection after the pragmas (a schema check; it is retried
    while the file is busy). ``on_error`` turns a ``sqlite3.Error`` met while opening into the
    caller's exception. ``uri`` passes the path to ``sqlite3.connect`` as a URI (``file:...?mode=rw``).

    ``damaged`` (the file's description, ``"the trace store"``) makes a damaged SQLite file — empty,
    or failing as corrupt when opened or, through :meth:`recover`, when used — be set aside
    (:func:`set_aside`) and replaced by a new one, for files whose content can be rebuilt or lost (a
    cache, traces). Without it, damage raises through ``on_error``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float,
        setup: Callable[[sqlite3.Connection], None],
        on_error: Callable[[sqlite3.Error], Exception],
        uri: bool = False,
        damaged: str | None = None,
    ) -> None:
        self.path = path if uri else Path(path)
        self.timeout = timeout
        self._setup = setup
        self._on_error = on_error
        self._uri = uri
        self._damaged = None if uri else damaged
        self._file: tuple[int, int] | None = None  # (device, inode) of the file the connections opened
        self._local = threading.local()
        self._opened: weakref.WeakSet[_Connection] = weakref.WeakSet()

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again in a forked child)."""
        held = getattr(self._local, "held", None)
        if held is not None and held[1] == _fork_generation:
            return held[0]
        return self.open()

    def open(self) -> sqlite3.Connection:
        if self._damaged is None:
            return self._open()
        path = Path(self.path)
        why = empty_file_damage(path)
        if why is not None:
            set_aside(path, why, self._damaged)
        try:
            return self._open()
        except _Corrupt as exc:
            if not is_sqlite_file(path):
                raise self._on_error(exc.error) from exc.error
            set_aside(path, f"is damaged ({exc.error})", self._damaged)
            return self._open()

    def recover(self, exc: sqlite3.Error) -> bool:
        """After ``exc`` met while using the file: when it says the file is damaged and damaged
        files may be replaced, set the file aside (unless another process already has), close this
        process's connections and return True — the caller retries once, on a new file."""
        if self._damaged is None or not is_corruption(exc):
            return False
        path = Path(self.path)
        self.close()
        if self._file is not None and _identity(path) == self._file and is_sqlite_file(path):
            set_aside(path, f"is damaged ({exc})", self._damaged)
        return True

    def run(self, step: Callable[[], T]) -> T:
        """``step()`` (which gets its connection from :meth:`get`); when the file turns out to be
        damaged and is set aside (:meth:`recover`), ``step()`` once more, on the new file."""
        try:
            return step()
        except sqlite3.Error as exc:
            if not self.recover(exc):
                raise
        return step()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.timeout,
                isolation_level=None,  # autocommit; transactions are explicit BEGIN … COMMIT
                check_same_thread=False,  # used by one thread only; close() may come from another
                factory=_Connection,
                uri=self._uri,
            )
        except sqlite3.Error as exc:
            raise self._on_error(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            retry_busy(lambda: _set_wal(conn), self.timeout)
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: safe against app crashes
            retry_busy(lambda: self._setup(conn), self.timeout)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                if self._damaged is not None and is_corruption(exc):
                    raise _Corrupt(exc) from exc
                raise self._on_error(exc) from exc
            raise
        assert isinstance(conn, _Connection)
        _connections.add(conn)
        self._opened.add(conn)
        self._local.held = (conn, _fork_generation)
        if not self._uri:
            self._file = _identity(Path(self.path))
        return conn

    def close(self) -> None:
        """Close the connections opened in this process (in any thread). The next :meth:`get`
        opens a new one."""
        self._local = threading.local()
        for conn in list(self._opened):
            self._opened.discard(conn)
            if conn in _connections:  # not inherited over a fork
                _connections.discard(conn)
                conn.close()


def require_schema(
    conn: sqlite3.Connection,
    *,
    meta_table: str,
    version: int,
    statements: Sequence[str],
    error: type[Exception],
    path: object,
    kind: str,
    elsewhere: str,
    on_mismatch: str = "delete or move the file and maru will create a new one there",
    upgrades: Mapping[int, Sequence[str]] | None = None,
) -> None:
    """:func:`ensure_schema`, turning a foreign database or another schema version into ``error``
    with a message that names the file, what it should hold (``kind``) and what to do."""
    try:
        found = ensure_schema(
            conn, meta_table=meta_table, version=version, statements=statements, upgrades=upgrades
        )
    except ForeignDatabase:
        raise error(
            f"{path} is a SQLite database of something else (it has tables but no {kind}); {elsewhere}"
        ) from None
    if found != version:
        raise error(
            f"the {kind} {path} has schema version {found}, this maru uses {version}; {on_mismatch}"
        )


class _Corrupt(Exception):
    """Opening met a corrupt file (``error``): :meth:`ThreadConnections.open` decides what to do."""

    def __init__(self, error: sqlite3.Error) -> None:
        super().__init__(str(error))
        self.error = error


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _set_wal(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
