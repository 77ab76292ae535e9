"""sales documents and reliability

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite cannot ALTER most things: add columns / indexes through op.batch_alter_table.
    _ = (sa, op)


def downgrade() -> None:
    _ = (sa, op)
