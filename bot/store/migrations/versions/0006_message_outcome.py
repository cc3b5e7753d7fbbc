"""message.outcome: messages out wait for the sender until they have an outcome

Rows written before the outbox get one from what is known of them (sent, failed, in
doubt), or "legacy": nothing old is sent after an upgrade.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(), nullable=True))
        batch_op.create_index("ix_message_waiting", ["outcome", "direction"], unique=False)
    op.execute(
        "UPDATE message SET outcome = CASE"
        " WHEN external_id IS NOT NULL THEN 'sent'"
        " WHEN NOT delivered THEN 'refused'"
        " WHEN send_started_at IS NOT NULL THEN 'unconfirmed'"
        " ELSE 'legacy' END"
        " WHERE direction = 'out'"
    )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_waiting")
        batch_op.drop_column("outcome")
