"""Who requested a waiver, as the audit log names them (user:<name> or cli:<login>), beside the user it
was requested as: the two-person rule compares people, so that one login cannot request a waiver as
one user and approve it as another. Waivers requested before have none (their user name is compared).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("waivers") as batch:
        batch.add_column(sa.Column("requested_actor", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("waivers") as batch:
        batch.drop_column("requested_actor")
