"""A ticket's first contact; follow-up attempts, outcomes, answers and `scheduled`.

The columns of a0407cd and fc8c7ed. A database adopted from the old create_all may
hold some of them already (it was made between those two commits): only the missing
ones are added. Existing rows get the models' defaults (0 attempts, no data, not yet
scheduled, so the scheduler gives each pending follow-up its job); the server
defaults that fill them are dropped again, as the models have none.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLED = ("attempts", "data", "scheduled")


def _columns(table: str) -> set[str]:
    if op.get_context().as_sql:  # `alembic upgrade --sql`: no database to look at
        return set()
    return {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}


def _indexes(table: str) -> set[str]:
    if op.get_context().as_sql:
        return set()
    return {str(index["name"]) for index in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade() -> None:
    if "first_contact_at" not in _columns("ticket"):
        with op.batch_alter_table("ticket") as batch:
            batch.add_column(
                sa.Column("first_contact_at", sa.DateTime(timezone=True), nullable=True)
            )

    present = _columns("followup")
    new: list[sa.Column[Any]] = [
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("scheduled", sa.Boolean(), nullable=False, server_default=sa.false()),
    ]
    added = [column.name for column in new if column.name not in present]
    if added:
        with op.batch_alter_table("followup") as batch:
            for column in new:
                if column.name in added:
                    batch.add_column(column)
    filled = [name for name in FILLED if name in added]
    if filled:
        with op.batch_alter_table("followup") as batch:
            for name in filled:
                batch.alter_column(name, server_default=None)
    if op.f("ix_followup_scheduled") not in _indexes("followup"):
        with op.batch_alter_table("followup") as batch:
            batch.create_index(op.f("ix_followup_scheduled"), ["scheduled"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("followup") as batch:
        batch.drop_index(op.f("ix_followup_scheduled"))
        for name in ("scheduled", "data", "answered_at", "last_attempt_at", "outcome", "attempts"):
            batch.drop_column(name)
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("first_contact_at")
