"""Import hardening: an import run records the process running it (so a run whose process died
shows as interrupted), and the clear passwords of vendor credentials (userProfiles.csv) that
earlier imports kept are removed: the gateway keeps none from now on.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 15:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pid', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('host', sa.String(length=255), nullable=True))
    op.execute("UPDATE user_profiles SET password = NULL WHERE password IS NOT NULL")


def downgrade() -> None:
    # The removed passwords are not restored: they were never the gateway's to keep.
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_column('host')
        batch_op.drop_column('pid')
