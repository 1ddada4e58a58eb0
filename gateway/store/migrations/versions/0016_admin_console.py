"""The admin console: district staff accounts with a role, their sessions (kept in the store like
portal sessions, so a sign-out ends them on every worker), and the audit log of their actions.

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-05 06:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'admin_accounts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('district_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('schools', sa.JSON(), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=True),
        sa.Column('invite_hash', sa.String(length=64), nullable=True),
        sa.Column('invite_expires_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('disabled_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['district_id'], ['districts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('district_id', 'email', name='uq_admin_accounts_email'),
        sa.UniqueConstraint('invite_hash'),
    )
    op.create_index('ix_admin_accounts_email', 'admin_accounts', ['email'], unique=False)
    op.create_table(
        'admin_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('admin_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['admin_id'], ['admin_accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_admin_sessions_admin_id', 'admin_sessions', ['admin_id'], unique=False)
    op.create_index('ix_admin_sessions_expires_at', 'admin_sessions', ['expires_at'],
                    unique=False)
    op.create_table(
        'admin_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('district_id', sa.Integer(), nullable=False),
        sa.Column('admin_id', sa.Integer(), nullable=True),
        sa.Column('actor', sa.String(length=320), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('target', sa.Text(), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['district_id'], ['districts.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['admin_id'], ['admin_accounts.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_admin_actions_district_at', 'admin_actions', ['district_id', 'at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_admin_actions_district_at', table_name='admin_actions')
    op.drop_table('admin_actions')
    op.drop_index('ix_admin_sessions_expires_at', table_name='admin_sessions')
    op.drop_index('ix_admin_sessions_admin_id', table_name='admin_sessions')
    op.drop_table('admin_sessions')
    op.drop_index('ix_admin_accounts_email', table_name='admin_accounts')
    op.drop_table('admin_accounts')
