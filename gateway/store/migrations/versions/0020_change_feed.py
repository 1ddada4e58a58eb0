"""The change feed and webhooks (issue 18): ``events`` (one row per changed record per district,
or per record entering or leaving one app's scope), ``event_heads`` (each district's cursor
counter and how far events were pruned) and ``webhooks`` (an app's delivery URL, sealed secret
and delivery state). See :mod:`gateway.store.events`.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-10 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'events',
        sa.Column('district_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=True),
        sa.Column('entity', sa.String(length=32), nullable=False),
        sa.Column('sourced_id', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('occurred_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('district_id', 'seq'),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_events_occurred', 'events', ['occurred_at'], unique=False)
    op.create_table(
        'event_heads',
        sa.Column('district_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('pruned_seq', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('district_id'),
    )
    op.create_table(
        'webhooks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('district_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('sealed_secret', sa.LargeBinary(), nullable=False),
        sa.Column('cursor', sa.BigInteger(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_delivered_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['district_id'], ['districts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhooks_app', 'webhooks', ['app_id', 'district_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhooks_app', table_name='webhooks')
    op.drop_table('webhooks')
    op.drop_table('event_heads')
    op.drop_index('ix_events_occurred', table_name='events')
    op.drop_table('events')
