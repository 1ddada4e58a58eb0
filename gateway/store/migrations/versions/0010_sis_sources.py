"""SIS sources: the OneRoster 1.2 REST services that `gateway sources` pulls districts' rosters
from on a schedule (client secret encrypted at rest), and how each one's last pull went.

A table of the store's main schema: on SQLite it lives in the store's file, not the attached
ledger file.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sis_sources',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('district_sourced_id', sa.String(length=255), nullable=False),
        sa.Column('district_name', sa.String(length=255), nullable=True),
        sa.Column('base_url', sa.String(length=2048), nullable=False),
        sa.Column('token_url', sa.String(length=2048), nullable=False),
        sa.Column('client_id', sa.String(length=255), nullable=False),
        sa.Column('client_secret_encrypted', sa.LargeBinary(), nullable=False),
        sa.Column('interval_seconds', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('next_due_at', sa.DateTime(), nullable=False),
        sa.Column('synced_through', sa.DateTime(), nullable=True),
        sa.Column('last_started_at', sa.DateTime(), nullable=True),
        sa.Column('last_finished_at', sa.DateTime(), nullable=True),
        sa.Column('last_outcome', sa.String(length=20), nullable=True),
        sa.Column('last_message', sa.Text(), nullable=True),
        sa.Column('last_import_run_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['last_import_run_id'], ['import_runs.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('district_sourced_id', 'base_url', name='uq_sis_sources_district_url'),
    )
    op.create_index('ix_sis_sources_next_due_at', 'sis_sources', ['next_due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sis_sources_next_due_at', table_name='sis_sources')
    op.drop_table('sis_sources')
