"""view counts of YouTube videos (the last two measurements and the growth per day) for
the queue's reach order, and the demo samples' known label (issue 31)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("views", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("views_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("views_before", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("views_before_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("views_per_day", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("demo_label", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_column("demo_label")
        batch_op.drop_column("views_per_day")
        batch_op.drop_column("views_before_at")
        batch_op.drop_column("views_before")
        batch_op.drop_column("views_at")
        batch_op.drop_column("views")
