"""newsletters: the newsletter table, users' opt-in, bulk rows in the outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(
            sa.Column("newsletter_opt_in", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "newsletter",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("withdrawn", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user.id"],
            name=op.f("fk_newsletter_created_by_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_newsletter")),
    )
    op.create_index("ix_newsletter_created", "newsletter", ["created_at", "id"])
    with op.batch_alter_table("email_outbox") as batch:
        batch.add_column(sa.Column("newsletter_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_email_outbox_newsletter_id_newsletter"),
            "newsletter",
            ["newsletter_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_email_outbox_newsletter", ["newsletter_id", "state"])


def downgrade() -> None:
    with op.batch_alter_table("email_outbox") as batch:
        batch.drop_index("ix_email_outbox_newsletter")
        batch.drop_constraint(op.f("fk_email_outbox_newsletter_id_newsletter"), type_="foreignkey")
        batch.drop_column("newsletter_id")
    op.drop_index("ix_newsletter_created", table_name="newsletter")
    op.drop_table("newsletter")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("newsletter_opt_in")
