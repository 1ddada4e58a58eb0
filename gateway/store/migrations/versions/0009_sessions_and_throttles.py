"""Portal sessions kept in the store (so sign-out, a password change or an admin's revocation end
them on every worker) and the failed-attempt counters that throttle password guessing.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'portal_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_portal_sessions_user_id', 'portal_sessions', ['user_id'], unique=False)
    op.create_index('ix_portal_sessions_expires_at', 'portal_sessions', ['expires_at'],
                    unique=False)
    op.create_table(
        'auth_throttles',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('window_started_at', sa.DateTime(), nullable=False),
        sa.Column('locked_until', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_auth_throttles_window_started_at', 'auth_throttles',
                    ['window_started_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_auth_throttles_window_started_at', table_name='auth_throttles')
    op.drop_table('auth_throttles')
    op.drop_index('ix_portal_sessions_expires_at', table_name='portal_sessions')
    op.drop_index('ix_portal_sessions_user_id', table_name='portal_sessions')
    op.drop_table('portal_sessions')
