"""Schema migrations (Alembic): upgrade to head, adopt databases made before them.

The migrations live in `bot/store/migrations/` and ship with the package; alembic.ini
at the project root points the `alembic` command at them (docs/storage.md).

A database created by the old `create_all` has the tables but no `alembic_version`:
`adopt` works out which revision its tables match, stamps it, and the upgrade goes on
from there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401 - the tables register on SQLModel.metadata
from bot.store.models import UTCDateTime

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})
"""Tables in the same database that are someone else's (APScheduler makes its own)."""

# Revision 0001: every table of the schema first shipped with the hand-off.
FIRST_TABLES = frozenset(
    {
        "agent",
        "complaint",
        "conversation",
        "customer",
        "evidence",
        "followup",
        "heldmessage",
        "message",
        "processedupdate",
        "ticket",
    }
)
# Revision 0002: the columns it adds (a0407cd and fc8c7ed); all present means 0002.
SECOND_COLUMNS: dict[str, frozenset[str]] = {
    "ticket": frozenset({"first_contact_at"}),
    "followup": frozenset(
        {"attempts", "outcome", "last_attempt_at", "answered_at", "data", "scheduled"}
    ),
}
_LOCK_KEY = 7_421_530_118  # pg_advisory_xact_lock: one process migrates at a time


class MigrationError(RuntimeError):
    """The database cannot be brought to the current schema as it is."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration in code: the packaged scripts, and our connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def database_url_for_alembic(config: Config) -> str:
    """For the `alembic` command: -x url=..., sqlalchemy.url, or DATABASE_URL (.env too)."""
    from alembic import context

    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from bot.config import load_settings

    return load_settings().database_url


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Autogenerate and compare look at our tables only."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Plain SQLAlchemy types in generated migrations, not the models' own classes."""
    if type_ == "type":
        if isinstance(obj, UTCDateTime):
            return "sa.DateTime(timezone=True)"
        if type(obj).__name__ == "AutoString":
            return "sa.String()"
    return False


def offline_options(url: str) -> dict[str, Any]:
    """For `alembic upgrade --sql`: the SQL written out instead of run."""
    return _options(sa.make_url(url).get_backend_name())


def context_options(connection: Connection) -> dict[str, Any]:
    return _options(connection.dialect.name)


def _options(dialect: str) -> dict[str, Any]:
    return {
        "target_metadata": SQLModel.metadata,
        "render_as_batch": dialect == "sqlite",
        "compare_type": True,
        "compare_server_default": True,
        "include_object": include_object,
        "render_item": render_item,
        "version_table": VERSION_TABLE,
    }


def configure_context(context: Any, connection: Connection) -> None:
    """What env.py tells Alembic, for an upgrade or for autogenerate."""
    context.configure(connection=connection, **context_options(connection))


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """One connection, one transaction for the whole upgrade, one migrating process.

    PostgreSQL: transactional DDL, and an advisory lock so processes starting together
    migrate one after the other. SQLite: `BEGIN IMMEDIATE` takes the write lock first,
    and foreign keys are off while batch mode copies tables (a table referenced by
    others cannot be dropped and renamed with them on); they are checked afterwards.
    """
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        try:
            yield connection
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise MigrationError(f"foreign keys broken by the migration: {broken[:5]}")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def detect_revision(connection: Connection) -> str | None:
    """The revision an unversioned database's tables match; None when it has none of ours.

    Raises MigrationError when only some of the first revision's tables are there.
    """
    inspector = sa.inspect(connection)
    tables = set(inspector.get_table_names())
    ours = tables & FIRST_TABLES
    if not ours:
        return None
    missing = FIRST_TABLES - tables
    if missing:
        raise MigrationError(
            "the database has some of the bot's tables but not "
            f"{', '.join(sorted(missing))}: it predates the first migration; "
            "start from an empty database or add them by hand"
        )
    for table, columns in SECOND_COLUMNS.items():
        present = {column["name"] for column in inspector.get_columns(table)}
        if not columns <= present:
            return "0001"  # 0002 adds what is missing (a database between the two has some)
    return "0002"


def adopt(connection: Connection) -> str | None:
    """Stamp a database made by the old create_all with the revision it matches."""
    if current_revision(connection) is not None:
        return None
    revision = detect_revision(connection)
    if revision is not None:
        command.stamp(alembic_config(connection), revision)
    return revision


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to `revision` (adopting an unversioned one); the revision after."""
    with migration_connection(engine) as connection:
        adopt(connection)
        command.upgrade(alembic_config(connection), revision)
        return current_revision(connection)


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return current_revision(connection)
