"""The throwaway PostgreSQL server that `dev.py test` runs the suite against."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.testpg import TempPostgres, find_server_binaries

needs_postgres = pytest.mark.skipif(
    find_server_binaries() is None, reason="PostgreSQL's server binaries are not installed"
)


@needs_postgres
def test_a_server_of_its_own_with_databases_made_and_dropped() -> None:
    with TempPostgres() as server:
        directory = server.directory
        assert directory is not None and directory.exists()
        assert server.url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
        url = server.create_database("t_probe")
        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                assert connection.exec_driver_sql("SELECT current_database()").scalar() == (
                    "t_probe"
                )
            server.drop_database("t_probe")  # even with the connection still pooled
        finally:
            engine.dispose()
        names = sa.create_engine(server.url)
        try:
            with names.connect() as connection:
                rows = connection.exec_driver_sql("SELECT datname FROM pg_database").scalars()
                assert "t_probe" not in set(rows)
        finally:
            names.dispose()
    assert not directory.exists()


@needs_postgres
def test_database_names_are_checked() -> None:
    with TempPostgres() as server, pytest.raises(ValueError, match="not a plain database name"):
        server.create_database('x"; DROP DATABASE postgres; --')
