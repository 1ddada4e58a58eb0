"""A webhook's delivery lease (issue 18): ``webhooks.lease_until``, held by the one delivery run
sending its events, so that runs of several processes at once (gradebook writes on every worker,
an import, ``gateway webhooks deliver``) take turns instead of sending the same batch each.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 00:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhooks') as batch:
        batch.add_column(sa.Column('lease_until', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhooks') as batch:
        batch.drop_column('lease_until')
