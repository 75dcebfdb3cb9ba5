"""where each video came from (YouTube upload or search, submitted URL or file),
who submitted it and why, its content hash, and a claim priority (issue 20)

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "source", sa.String(length=24), server_default="youtube_upload", nullable=False
            )
        )
        batch_op.add_column(sa.Column("submitted_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("submission_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("source_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_videos_source"), ["source"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_videos_content_sha256"), ["content_sha256"]
        )
    # Videos found by a search query were recorded as discovered_via "query:<text>".
    op.execute("UPDATE videos SET source = 'youtube_search' WHERE discovered_via LIKE 'query:%'")


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_videos_content_sha256"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_videos_source"))
        batch_op.drop_column("priority")
        batch_op.drop_column("content_sha256")
        batch_op.drop_column("source_url")
        batch_op.drop_column("submission_note")
        batch_op.drop_column("submitted_by")
        batch_op.drop_column("source")
