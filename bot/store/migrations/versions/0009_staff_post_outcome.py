"""staff_post.outcome and send_started_at: a line for a topic is posted at most once and
keeps its outcome, as every other row the bot sends

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_post", schema=None) as batch_op:
        batch_op.add_column(sa.Column("send_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(), nullable=True))
        batch_op.create_index(batch_op.f("ix_staff_post_outcome"), ["outcome"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_post_outcome"))
        batch_op.drop_column("outcome")
        batch_op.drop_column("send_started_at")
