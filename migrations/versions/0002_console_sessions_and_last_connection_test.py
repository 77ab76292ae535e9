"""web console sessions; the last connection test; indexes of skipped and failed couplings

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FAILED_COUPLING = "last_synch_result = 'failure' OR last_synch_crm_result = 'failure'"


def upgrade() -> None:
    with op.batch_alter_table("integration_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_coupling_skipped", ["table_name"], unique=False,
            sqlite_where=sa.text("skipped = 1"), postgresql_where=sa.text("skipped = true"),
        )  # fmt: skip
        batch_op.create_index(
            "ix_coupling_failed", ["table_name"], unique=False,
            sqlite_where=sa.text(FAILED_COUPLING), postgresql_where=sa.text(FAILED_COUPLING),
        )  # fmt: skip
    op.create_table(
        "console_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("token_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("credential", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("last_seen_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("system_id"),
        sa.UniqueConstraint("token_digest"),
    )
    with op.batch_alter_table("console_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_session_modified_at"), ["modified_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_console_session_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_console_session_expires_at"), ["expires_at"], unique=False
        )
    with op.batch_alter_table("connection_setup", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_tested_at", app.models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_test_ok", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "last_test_message",
                sqlmodel.sql.sqltypes.AutoString(length=500),
                nullable=False,
                server_default="",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("integration_record", schema=None) as batch_op:
        batch_op.drop_index("ix_coupling_failed")
        batch_op.drop_index("ix_coupling_skipped")
    with op.batch_alter_table("connection_setup", schema=None) as batch_op:
        batch_op.drop_column("last_test_message")
        batch_op.drop_column("last_test_ok")
        batch_op.drop_column("last_tested_at")
    with op.batch_alter_table("console_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_session_expires_at"))
        batch_op.drop_index(batch_op.f("ix_console_session_user_id"))
        batch_op.drop_index(batch_op.f("ix_console_session_modified_at"))
    op.drop_table("console_session")
