"""transactions: orders, their status history, idempotency keys, payment events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transaction",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("payment_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transaction_amount_positive")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_transaction_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction")),
    )
    op.create_index("ix_transaction_user_created", "transaction", ["user_id", "created_at", "id"])
    op.create_index(
        "ix_transaction_user_status_created",
        "transaction",
        ["user_id", "status", "created_at", "id"],
    )
    op.create_index("ix_transaction_status_created", "transaction", ["status", "created_at", "id"])
    op.create_index("ix_transaction_status_due", "transaction", ["status", "payment_due_at"])
    op.create_index(
        "ix_transaction_flagged_created", "transaction", ["flagged", "created_at", "id"]
    )
    op.create_index("ix_transaction_created", "transaction", ["created_at", "id"])

    op.create_table(
        "transaction_status_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transaction.id"],
            name=op.f("fk_transaction_status_history_transaction_id_transaction"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["user.id"],
            name=op.f("fk_transaction_status_history_actor_user_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction_status_history")),
    )
    op.create_index(
        "ix_transaction_status_history_transaction",
        "transaction_status_history",
        ["transaction_id", "id"],
    )

    op.create_table(
        "transaction_idempotency_key",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_transaction_idempotency_key_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transaction.id"],
            name=op.f("fk_transaction_idempotency_key_transaction_id_transaction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_transaction_idempotency_key")),
    )
    op.create_index(
        "ix_transaction_idempotency_key_created", "transaction_idempotency_key", ["created_at"]
    )

    op.create_table(
        "payment_event",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_event")),
    )


def downgrade() -> None:
    op.drop_table("payment_event")
    op.drop_index(
        "ix_transaction_idempotency_key_created", table_name="transaction_idempotency_key"
    )
    op.drop_table("transaction_idempotency_key")
    op.drop_index(
        "ix_transaction_status_history_transaction", table_name="transaction_status_history"
    )
    op.drop_table("transaction_status_history")
    for name in (
        "ix_transaction_created",
        "ix_transaction_flagged_created",
        "ix_transaction_status_due",
        "ix_transaction_status_created",
        "ix_transaction_user_status_created",
        "ix_transaction_user_created",
    ):
        op.drop_index(name, table_name="transaction")
    op.drop_table("transaction")
