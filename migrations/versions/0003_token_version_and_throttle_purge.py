"""user_account.token_version; login_throttle purged by window start (issue 14)

Bearer tokens carry the user's ``token_version``; a password change, a disable or a lost
role bumps it, so the tokens issued before stop working. ``login_throttle`` rows are now
deleted once their window has passed, which the index on ``window_started_at`` keeps
cheap; ``blocked_until`` is gone (a subject is blocked while its window holds the limit).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), server_default="0", nullable=False)
        )
    # The old rows counted per user name alone (anyone could lock a user out); the new
    # subjects are different strings, so the old ones would only wait to be purged.
    op.execute("DELETE FROM login_throttle")
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.drop_column("blocked_until")
        batch_op.create_index(
            batch_op.f("ix_login_throttle_window_started_at"), ["window_started_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttle_window_started_at"))
        batch_op.add_column(
            sa.Column(
                "blocked_until", app.models.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("token_version")
