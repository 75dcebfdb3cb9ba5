"""quota recovery: the budget behind each ledger entry, and why a search waits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("quota_ledger", schema=None) as batch_op:
        batch_op.add_column(sa.Column("budget", sa.Integer(), nullable=True))
    with op.batch_alter_table("search_queries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("next_search_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("search_queries", schema=None) as batch_op:
        batch_op.drop_column("next_search_at")
        batch_op.drop_column("waiting_reason")
    with op.batch_alter_table("quota_ledger", schema=None) as batch_op:
        batch_op.drop_column("budget")
