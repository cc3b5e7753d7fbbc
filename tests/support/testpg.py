"""A throwaway PostgreSQL server for tests and benchmarks.

    with TempPostgres() as pg:
        url = pg.create_database("t_example")   # postgresql+psycopg://postgres@127.0.0.1:PORT/t_example
        ...
        pg.drop_database("t_example")

The cluster lives in a temporary directory, listens on 127.0.0.1 on a free port
(and on a unix socket in the same directory), trusts every local connection, and
is stopped and deleted on exit. It needs PostgreSQL's server binaries (initdb,
pg_ctl): on PATH or in Debian's /usr/lib/postgresql/VERSION/bin. PostgreSQL
refuses to run as root, so as root the cluster is made and run by the `postgres`
user (Debian's package creates it) through `runuser`.

Durability is switched off (fsync, full-page writes, synchronous commit): the data
is thrown away anyway, and tests run faster.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

SERVER_USER = "postgres"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def find_server_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    initdb = shutil.which("initdb")
    if initdb:
        folder = Path(initdb).resolve().parent
        if (folder / "pg_ctl").exists():
            return folder
    candidates = []
    for folder in Path("/usr/lib/postgresql").glob("*/bin"):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            version = folder.parent.name
            key = tuple(int(part) for part in version.split(".") if part.isdigit())
            candidates.append((key, folder))
    if not candidates:
        return None
    return max(candidates)[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quoted(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return f'"{name}"'


def _admin_engine(server_url: str) -> sa.Engine:
    return sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """Create database `name` on the server of `server_url` (empty, or a copy of database
    `template`, which nobody may be connected to); return the URL to it."""
    engine = _admin_engine(server_url)
    copy = f" TEMPLATE {_quoted(template)}" if template else ""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {_quoted(name)}{copy}")
    finally:
        engine.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name`, disconnecting whoever is still connected to it."""
    engine = _admin_engine(server_url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
    finally:
        engine.dispose()


class TempPostgres:
    """A PostgreSQL cluster in a temporary directory, for the time of a `with` block."""

    def __init__(self, bin_dir: Path | str | None = None, *, max_connections: int = 300) -> None:
        found = Path(bin_dir) if bin_dir else find_server_binaries()
        if found is None:
            raise RuntimeError(
                "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH "
                "or in /usr/lib/postgresql/*/bin; on Debian: apt-get install postgresql"
            )
        self.bin_dir = found
        self.max_connections = max_connections
        self.port = 0
        self.directory: Path | None = None
        self._as_user: list[str] = []
        self._uid: int | None = None
        self._gid: int | None = None

    # -- life cycle ---------------------------------------------------------------

    def __enter__(self) -> TempPostgres:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def data_dir(self) -> Path:
        assert self.directory is not None, "the server is not started"
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.directory is not None, "the server is not started"
        return self.directory / "socket"

    @property
    def log_file(self) -> Path:
        assert self.directory is not None, "the server is not started"
        return self.directory / "server.log"

    @property
    def url(self) -> str:
        """The URL of the server's `postgres` database, as user `postgres`."""
        if not self.port:
            raise RuntimeError("the server is not started")
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        if self.directory is not None:
            raise RuntimeError("the server is already started")
        self.directory = Path(tempfile.mkdtemp(prefix="testpg-"))
        try:
            self._prepare_user()
            self.socket_dir.mkdir()
            self._chown(self.directory)
            self._chown(self.socket_dir)
            self._run(
                "initdb",
                "--pgdata",
                str(self.data_dir),
                "--username",
                SERVER_USER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            )
            self._start_server()
        except BaseException:
            self._remove()
            raise

    def stop(self) -> None:
        if self.directory is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "-m", "fast", "-w")
        finally:
            self._remove()

    # -- databases ----------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        return create_database(self.url, name)

    def drop_database(self, name: str) -> None:
        drop_database(self.url, name)

    # -- details ------------------------------------------------------------------

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise RuntimeError(
                f"PostgreSQL does not run as root and there is no {SERVER_USER!r} user "
                "to run it as (Debian's postgresql package creates one)"
            ) from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise RuntimeError("running PostgreSQL as root needs `runuser` (util-linux)")
        self._uid, self._gid = entry.pw_uid, entry.pw_gid
        self._as_user = [runuser, "-u", SERVER_USER, "--"]

    def _chown(self, path: Path) -> None:
        if self._uid is not None and self._gid is not None:
            os.chown(path, self._uid, self._gid)

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_user, str(self.bin_dir / program), *args]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C", "TZ": os.environ.get("TZ", "UTC")},
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"{self._log_tail()}"
            )

    def _start_server(self) -> None:
        last_error: RuntimeError | None = None
        for _attempt in range(5):
            self.port = _free_port()
            options = " ".join(
                [
                    "-h 127.0.0.1",
                    f"-p {self.port}",
                    f"-k {self.socket_dir}",
                    "-F",  # fsync off
                    "-c full_page_writes=off",
                    "-c synchronous_commit=off",
                    f"-c max_connections={self.max_connections}",
                ]
            )
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    "--pgdata",
                    str(self.data_dir),
                    "--log",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                )
            except RuntimeError as error:  # most likely the port was taken meanwhile
                last_error = error
                self.port = 0
                time.sleep(0.2)
                continue
            self._wait_until_accepting()
            return
        assert last_error is not None
        raise last_error

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL did not accept connections{self._log_tail()}"
                    ) from None
                time.sleep(0.1)

    def _log_tail(self) -> str:
        if self.directory is None or not self.log_file.exists():
            return ""
        lines = self.log_file.read_text(errors="replace").splitlines()[-20:]
        return "\nserver log:\n" + "\n".join(lines)

    def _remove(self) -> None:
        if self.directory is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.directory)
        self.directory = None
        self.port = 0


def main(argv: list[str]) -> int:
    """`python -m tests.support.testpg --find`: where the server binaries are (exit 1: none).
    `python -m tests.support.testpg [--] COMMAND ...`: COMMAND with TEST_DATABASE_URL set to
    a throwaway server's URL, which is removed when COMMAND ends; COMMAND's exit status."""
    if argv in ([], ["-h"], ["--help"]):
        print(main.__doc__)
        return 2
    if argv == ["--find"]:
        found = find_server_binaries()
        print(found or "no PostgreSQL server binaries (initdb, pg_ctl)")
        return 0 if found else 1
    command = argv[1:] if argv[0] == "--" else argv
    try:
        server = TempPostgres()
        server.start()
    except RuntimeError as error:
        print(f"testpg: {error}", file=sys.stderr)
        return 1
    try:
        print(f"testpg: PostgreSQL from {server.bin_dir} at {server.url}", file=sys.stderr)
        return subprocess.call(command, env={**os.environ, "TEST_DATABASE_URL": server.url})
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
