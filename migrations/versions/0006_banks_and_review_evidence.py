"""re-upload banks and video fingerprints, declared synthetic media, decision reasons
and reversals (issue 12)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "video_fingerprints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("frames", sa.JSON(), nullable=False),
        sa.Column("bank_frames", sa.JSON(), nullable=True),
        sa.Column("faces", sa.JSON(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name=op.f("fk_video_fingerprints_video_id_videos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_fingerprints")),
    )
    with op.batch_alter_table("video_fingerprints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_video_fingerprints_video_id"), ["video_id"], unique=False
        )

    op.create_table(
        "bank_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank", sa.String(length=16), nullable=False),
        sa.Column("content_id", sa.String(length=200), nullable=False),
        sa.Column("youtube_id", sa.String(length=16), nullable=True),
        sa.Column("video_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["review_decisions.id"],
            name=op.f("fk_bank_entries_decision_id_review_decisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name=op.f("fk_bank_entries_video_id_videos"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_entries")),
        sa.UniqueConstraint("content_id", name=op.f("uq_bank_entries_content_id")),
    )
    with op.batch_alter_table("bank_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bank_entries_bank"), ["bank"], unique=False)
        batch_op.create_index(batch_op.f("ix_bank_entries_video_id"), ["video_id"], unique=False)

    op.create_table(
        "bank_hashes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("t", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["bank_entries.id"],
            name=op.f("fk_bank_hashes_entry_id_bank_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_hashes")),
    )
    with op.batch_alter_table("bank_hashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bank_hashes_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "bank_matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("bank", sa.String(length=16), nullable=False),
        sa.Column("content_id", sa.String(length=200), nullable=False),
        sa.Column("matched_youtube_id", sa.String(length=16), nullable=True),
        sa.Column("matched_title", sa.String(length=500), nullable=True),
        sa.Column("query_share", sa.Float(), nullable=False),
        sa.Column("bank_share", sa.Float(), nullable=False),
        sa.Column("frames_matched", sa.Integer(), nullable=False),
        sa.Column("frames_compared", sa.Integer(), nullable=False),
        sa.Column("faces_matched", sa.Integer(), nullable=True),
        sa.Column("faces_compared", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["bank_entries.id"],
            name=op.f("fk_bank_matches_entry_id_bank_entries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name=op.f("fk_bank_matches_video_id_videos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_matches")),
    )
    with op.batch_alter_table("bank_matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bank_matches_video_id"), ["video_id"], unique=False)

    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("reverses_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reversal_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_review_decisions_reverses_id_review_decisions"),
            "review_decisions",
            ["reverses_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("declared_synthetic", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_column("declared_synthetic")

    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_review_decisions_reverses_id_review_decisions"), type_="foreignkey"
        )
        batch_op.drop_column("reversal_reason")
        batch_op.drop_column("reverses_id")
        batch_op.drop_column("policy_reason")

    with op.batch_alter_table("bank_matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bank_matches_video_id"))

    op.drop_table("bank_matches")
    with op.batch_alter_table("bank_hashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bank_hashes_entry_id"))

    op.drop_table("bank_hashes")
    with op.batch_alter_table("bank_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bank_entries_video_id"))
        batch_op.drop_index(batch_op.f("ix_bank_entries_bank"))

    op.drop_table("bank_entries")
    with op.batch_alter_table("video_fingerprints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_video_fingerprints_video_id"))

    op.drop_table("video_fingerprints")
