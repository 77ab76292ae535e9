"""CRM change notifications by webhook (issue 18).

- ``dataverse_entity_change``: the changed record (``record_id``), the message (Create,
  Update, Delete) and the delivery's id (``delivery_key``, unique: a delivery that
  arrives twice is stored once); ``processed_at`` indexed, as every tick asks for the
  unprocessed rows. Existing rows keep their entity name and have none of the new values.
- ``crm_webhook``: the service endpoint and steps registered in the CRM, the secret the
  CRM sends (encrypted), and what arrived (counts, last times, last refusal).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dataverse_entity_change", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "message",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(
            sa.Column("delivery_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
        )
        batch_op.create_unique_constraint(
            "uq_dataverse_entity_change_delivery_key", ["delivery_key"]
        )
        batch_op.create_index(
            batch_op.f("ix_dataverse_entity_change_processed_at"), ["processed_at"], unique=False
        )
    op.create_table(
        "crm_webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("service_endpoint_id", sa.Uuid(), nullable=True),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("registered_at", app.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("received_count", sa.BigInteger(), nullable=False),
        sa.Column("refused_count", sa.BigInteger(), nullable=False),
        sa.Column("last_received_at", app.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_refused_at", app.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_refusal", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("system_id"),
    )
    with op.batch_alter_table("crm_webhook", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_crm_webhook_modified_at"), ["modified_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("crm_webhook", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_webhook_modified_at"))
    op.drop_table("crm_webhook")
    with op.batch_alter_table("dataverse_entity_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataverse_entity_change_processed_at"))
        batch_op.drop_constraint("uq_dataverse_entity_change_delivery_key", type_="unique")
        batch_op.drop_column("delivery_key")
        batch_op.drop_column("message")
        batch_op.drop_column("record_id")
