"""Alembic's environment: the project's models, its URL handling and its options.

`Database.upgrade()` (and so `python -m bot migrate` and start-up) hands in its own
connection; the `alembic` command (alembic.ini at the project root) connects to
`-x url=...` or DATABASE_URL itself, the same way.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from bot.store.migrate import configure_context, database_url_for_alembic, migration_connection

config = context.config
connection = config.attributes.get("connection")
if connection is not None:
    configure_context(context, connection)
    with context.begin_transaction():
        context.run_migrations()
elif context.is_offline_mode():
    from bot.store.db import normalize_url
    from bot.store.migrate import offline_options

    url = normalize_url(database_url_for_alembic(config))
    context.configure(url=url, literal_binds=True, **offline_options(url))
    with context.begin_transaction():
        context.run_migrations()
else:
    from bot.store.db import Database

    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    database = Database(database_url_for_alembic(config))
    try:
        with migration_connection(database.engine) as connection:
            configure_context(context, connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        database.dispose()
