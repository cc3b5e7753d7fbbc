"""Shared fixtures: one trained model per test session, cached where the CLI finds it too."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT, Settings
from bot.nlu.model import TriageModel, load_or_train
from bot.store import Database
from bot.store.db import normalize_url
from tests.support.forkserver import fresh_processes, shared
from tests.support.testpg import create_database, drop_database

NLU_DATA = PROJECT_ROOT / "nlu_data"


def pytest_report_header() -> str:
    server = os.environ.get("TEST_DATABASE_URL")
    if server:
        return f"database: PostgreSQL, a new database per test on {server}"
    return "database: SQLite, a file per test (set TEST_DATABASE_URL for PostgreSQL)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the tests marked `slow` lead the workers' shares, one each in
    turn. The work-stealing scheduler hands each worker a contiguous share of the
    collection and later moves tests from the end of a busy share to an idle worker: a
    minute-long test found late in a share would run alone at the end of the run."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    slow = [item for item in items if item.get_closest_marker("slow")]
    if workers < 2 or not slow:
        return
    rest = [item for item in items if not item.get_closest_marker("slow")]
    ordered: list[pytest.Item] = []
    left = len(items)
    for worker in range(workers):  # the scheduler's shares: what is left over those left
        share = left // (workers - worker)
        left -= share
        lead = slow[worker::workers]
        fill = max(0, share - len(lead))
        ordered += [*lead, *rest[:fill]]
        del rest[:fill]
    items[:] = [*ordered, *rest]


NLU_TEST_CACHE = PROJECT_ROOT / ".cache" / "nlu-tests"
"""Kept between runs (the model is keyed by the data's hash): `dev.py test` runs the
suite on SQLite and then on PostgreSQL, and the second run loads what the first
trained instead of embedding and training again."""


@pytest.fixture(scope="session")
def nlu_cache_dir() -> Path:
    NLU_TEST_CACHE.mkdir(parents=True, exist_ok=True)
    return NLU_TEST_CACHE


SMALL_NLU_FILES = (
    "intents.yml",
    "complaints_short.yml",
    "motives.yml",
    "motives_unspecified.yml",
    "signals.yml",
    "entities.yml",
)
"""A third of nlu_data/ with every label in it: for tests of what is done *with* the data
(caching, retraining, reports) rather than of what the model learns from it, which train
in seconds on it instead of a minute on the whole."""


def copy_small_nlu_data(folder: Path) -> Path:
    """SMALL_NLU_FILES of both languages, copied into ``folder`` (a data folder)."""
    for language in ("zh", "en"):
        (folder / language).mkdir(parents=True)
        for name in SMALL_NLU_FILES:
            (folder / language / name).write_bytes((NLU_DATA / language / name).read_bytes())
    (folder / "README.md").write_bytes((NLU_DATA / "README.md").read_bytes())
    return folder


@pytest.fixture(scope="session")
def model(nlu_cache_dir: Path) -> TriageModel:
    """Trained from nlu_data/ (or loaded) in the tests' cache folder."""
    return load_or_train(NLU_DATA, nlu_cache_dir)


@pytest.fixture(scope="session")
def sqlite_at_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the current schema once per test worker: the tests'
    SQLite databases start as copies of it (migrating one from nothing costs 0.2 s of
    CPU and half a second of disk syncs, some six hundred times a run)."""
    path = tmp_path_factory.mktemp("schema") / "head.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()  # the last connection checkpoints the write-ahead log into the file
    return path


@pytest.fixture(scope="session")
def postgres_at_head() -> Iterator[str | None]:
    """With TEST_DATABASE_URL, a database migrated to the current schema once per test
    worker, which the tests' PostgreSQL databases are created from (CREATE DATABASE …
    TEMPLATE): the same saving as `sqlite_at_head`. None without a server."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield None
        return
    name = f"t_head_{secrets.token_hex(5)}"
    database = Database(create_database(normalize_url(server), name))
    database.upgrade()
    database.dispose()  # a template may have no one connected to it
    yield name
    drop_database(normalize_url(server), name)


@pytest.fixture
def make_database_url(
    tmp_path: Path, sqlite_at_head: Path, postgres_at_head: str | None
) -> Iterator[Callable[..., str]]:
    """A new database per call: a SQLite file in tmp_path, or, when the environment has
    TEST_DATABASE_URL (a PostgreSQL server's URL), a database of its own on that server,
    dropped after the test (`python3 dev.py test` runs the suite both ways). It is a
    copy of one at the current schema (`sqlite_at_head`, `postgres_at_head`) unless
    `empty=True`. The bot (and each test's engine) still runs the upgrade, which finds
    it current, as in production, where an up-to-date database is the common case."""
    server = os.environ.get("TEST_DATABASE_URL")
    made: list[str] = []

    def make(name: str, *, empty: bool = False) -> str:
        if not server:
            path = tmp_path / (name + ".db")
            if not empty:
                shutil.copyfile(sqlite_at_head, path)
            return f"sqlite:///{path}"
        database = f"t_{name}_{secrets.token_hex(5)}"
        made.append(database)
        template = None if empty else postgres_at_head
        return create_database(normalize_url(server), database, template)

    yield make
    for database in made:
        drop_database(normalize_url(server or ""), database)


@pytest.fixture
def database_url(make_database_url: Callable[..., str]) -> str:
    """The test's database (see make_database_url)."""
    return make_database_url("test")


@pytest.fixture
def empty_database_url(make_database_url: Callable[..., str]) -> str:
    """A database with nothing in it, not even the schema (for the migrations' tests)."""
    return make_database_url("empty", empty=True)


@pytest.fixture
def settings(nlu_cache_dir: Path, database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        nlu_cache_dir=nlu_cache_dir,
        database_url=database_url,
    )


@pytest.fixture
def cli_env(nlu_cache_dir: Path, model: TriageModel, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for `python -m bot` in a subprocess: the session's model cache, no .env."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELEGRAM_")}
    env.update({"NLU_CACHE_DIR": str(nlu_cache_dir), "PYTHONIOENCODING": "utf-8"})
    yield env


def run_cli(
    *args: str, env: dict[str, str], stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` to its end: forked from the worker's fork server (the same code
    after the imports, tests/support/forkserver.py), or a new interpreter with
    TEST_BOT_EXEC=1."""
    if not fresh_processes():
        return shared().run(list(args), env, stdin, cwd or PROJECT_ROOT, timeout=600)
    return run_fresh(*args, env=env, stdin=stdin, cwd=cwd)


def run_fresh(
    *args: str, env: dict[str, str], stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` to its end in a new interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or PROJECT_ROOT,
        timeout=600,  # a limit against hanging, not a speed test (CI runs on 2 shared cores)
        check=False,
    )
