"""Initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

While the first release is being built, the baseline creates the tables from the models; it is
frozen into explicit operations before the first release (see CHANGELOG).
"""

from alembic import op

from web.models_registry import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
