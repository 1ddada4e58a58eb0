"""Scope snapshots: each restricted policy's visible classes, users and students, materialized per
policy revision and district data version, so that requests probe a table instead of evaluating
the policy's rules over the district's enrollments on every statement.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scope_snapshots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('policy_id', sa.Integer(), nullable=False),
        sa.Column('policy_revision', sa.Integer(), nullable=False),
        sa.Column('district_id', sa.Integer(), nullable=False),
        sa.Column('data_version', sa.Integer(), nullable=False),
        sa.Column('built_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['policy_id'], ['sharing_policies.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('policy_id', 'policy_revision', 'data_version',
                            name='uq_scope_snapshots_version'),
    )
    op.create_table(
        'scope_members',
        sa.Column('snapshot_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('kind', sa.String(length=1), nullable=False),
        sa.Column('row_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('sourced_id', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('snapshot_id', 'kind', 'row_id'),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_scope_members_sourced_id', 'scope_members',
                    ['snapshot_id', 'kind', 'sourced_id'], unique=False)
    # Snapshots of existing policies are built on first use (gateway.sharing.snapshots).


def downgrade() -> None:
    op.drop_index('ix_scope_members_sourced_id', table_name='scope_members')
    op.drop_table('scope_members')
    op.drop_table('scope_snapshots')
