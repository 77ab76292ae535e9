"""certificate credentials, option mappings, user-defined field mappings

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connection_setup", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("client_certificate_encrypted", sa.Text(), nullable=False, server_default="")
        )
    with op.batch_alter_table("integration_field_mapping", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("user_defined", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "crm_option_mapping",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("option_set", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("erp_code", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("option_value", sa.Integer(), nullable=False),
        sa.Column("caption", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("option_set", "erp_code", name="uq_option_mapping_code"),
        sa.UniqueConstraint("option_set", "option_value", name="uq_option_mapping_value"),
        sa.UniqueConstraint("system_id"),
    )
    with op.batch_alter_table("crm_option_mapping", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_crm_option_mapping_modified_at"), ["modified_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("crm_option_mapping", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_option_mapping_modified_at"))
    op.drop_table("crm_option_mapping")
    with op.batch_alter_table("integration_field_mapping", schema=None) as batch_op:
        batch_op.drop_column("user_defined")
    with op.batch_alter_table("connection_setup", schema=None) as batch_op:
        batch_op.drop_column("client_certificate_encrypted")
