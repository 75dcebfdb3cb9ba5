"""channel feeds and WebSub push: feed validators and schedule, push subscription state,
and videos waiting for a shared videos.list lookup

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feed_etag", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("feed_last_modified", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("feed_next_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("feed_checked_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("feed_read_at", _TIME, nullable=True))
        batch_op.add_column(
            sa.Column("feed_failures", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("feed_seen", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("playlist_due", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("push_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("push_requested_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("push_expires_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("push_key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("push_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("push_notified_at", _TIME, nullable=True))
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lookup_due_at", _TIME, nullable=True))
        batch_op.create_index(
            batch_op.f("ix_videos_lookup_due_at"), ["lookup_due_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_videos_lookup_due_at"))
        batch_op.drop_column("lookup_due_at")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        for column in (
            "push_notified_at",
            "push_error",
            "push_key_id",
            "push_expires_at",
            "push_requested_at",
            "push_state",
            "playlist_due",
            "feed_seen",
            "feed_failures",
            "feed_read_at",
            "feed_checked_at",
            "feed_next_at",
            "feed_last_modified",
            "feed_etag",
        ):
            batch_op.drop_column(column)
