"""The LTI 1.3 tool role: LMS platforms per district, their deployments, the LMS people, contexts
and resource links seen (with their OneRoster matches), the values of launches in progress and
the grades on their way back to the LMS.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-05 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lms_platforms',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('district_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('issuer', sa.String(length=255), nullable=False),
        sa.Column('client_id', sa.String(length=255), nullable=False),
        sa.Column('auth_url', sa.Text(), nullable=False),
        sa.Column('token_url', sa.Text(), nullable=False),
        sa.Column('jwks_url', sa.Text(), nullable=False),
        sa.Column('match_rules', sa.JSON(), nullable=False),
        sa.Column('class_claim', sa.String(length=255), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('registration', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['district_id'], ['districts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('issuer', 'client_id', name='uq_lms_platforms_issuer_client'))
    op.create_index('ix_lms_platforms_district', 'lms_platforms', ['district_id'])
    op.create_table(
        'lms_deployments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform_id', sa.Integer(), nullable=False),
        sa.Column('deployment_id', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['platform_id'], ['lms_platforms.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('platform_id', 'deployment_id', name='uq_lms_deployments_platform'))
    for table, key, match in (('lms_people', 'lms_user_id', 'user_sourced_id'),
                              ('lms_contexts', 'context_id', 'class_sourced_id')):
        op.create_table(
            table,
            sa.Column('platform_id', sa.Integer(), nullable=False),
            sa.Column(key, sa.String(length=255), nullable=False),
            sa.Column(match, sa.String(length=255), nullable=True),
            sa.Column('matched_by', sa.String(length=32), nullable=True),
            sa.Column('label', sa.Text(), nullable=False),
            sa.Column('first_seen', sa.DateTime(), nullable=False),
            sa.Column('last_seen', sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(['platform_id'], ['lms_platforms.id'], ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('platform_id', key))
    op.create_table(
        'lms_links',
        sa.Column('platform_id', sa.Integer(), nullable=False),
        sa.Column('lms_link_id', sa.String(length=255), nullable=False),
        sa.Column('context_id', sa.String(length=255), nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=True),
        sa.Column('gateway_link_id', sa.String(length=64), nullable=True),
        sa.Column('lms_ags', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['platform_id'], ['lms_platforms.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('platform_id', 'lms_link_id'))
    op.create_table(
        'lms_launch_values',
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('value', sa.JSON(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'))
    op.create_index('ix_lms_launch_values_expires', 'lms_launch_values', ['expires_at'])
    op.create_table(
        'lms_grade_forwards',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform_id', sa.Integer(), nullable=False),
        sa.Column('lms_link_id', sa.String(length=255), nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('student_sourced_id', sa.String(length=255), nullable=False),
        sa.Column('score', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['platform_id'], ['lms_platforms.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_lms_grade_forwards_due', 'lms_grade_forwards',
                    ['status', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_index('ix_lms_grade_forwards_due', table_name='lms_grade_forwards')
    op.drop_table('lms_grade_forwards')
    op.drop_index('ix_lms_launch_values_expires', table_name='lms_launch_values')
    op.drop_table('lms_launch_values')
    op.drop_table('lms_links')
    op.drop_table('lms_contexts')
    op.drop_table('lms_people')
    op.drop_table('lms_deployments')
    op.drop_index('ix_lms_platforms_district', table_name='lms_platforms')
    op.drop_table('lms_platforms')
