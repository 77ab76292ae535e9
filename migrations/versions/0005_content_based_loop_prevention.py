"""Loop prevention by content and the item availability push's own cursor (issue 19).

- ``integration_record``: the digests of the mapped fields as the last sync wrote or read
  them on each side (``erp_fingerprint``, ``crm_fingerprint``), the CRM row version it
  left with nothing pending (``crm_version``), and the item ledger entry no. up to which
  the item availability push confirmed the product's quantity (``availability_entry_no``).
  Existing couplings start with none of them: their next sync records them.
- ``synch_cursor``: a job's position in an append-only table (the push's ledger entry no.).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("integration_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erp_fingerprint", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("crm_fingerprint", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("crm_version", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("availability_entry_no", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            "ix_coupling_availability", ["table_name", "availability_entry_no"], unique=False
        )
    op.create_table(
        "synch_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("system_id"),
    )
    with op.batch_alter_table("synch_cursor", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_synch_cursor_modified_at"), ["modified_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("synch_cursor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_synch_cursor_modified_at"))
    op.drop_table("synch_cursor")
    with op.batch_alter_table("integration_record", schema=None) as batch_op:
        batch_op.drop_index("ix_coupling_availability")
        batch_op.drop_column("availability_entry_no")
        batch_op.drop_column("crm_version")
        batch_op.drop_column("crm_fingerprint")
        batch_op.drop_column("erp_fingerprint")
