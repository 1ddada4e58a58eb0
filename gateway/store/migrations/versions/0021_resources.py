"""The Resources service (issue 18): ``resources`` and the links of the CSV binding's
classResources, courseResources and userResources files (see :mod:`gateway.store.resources`).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 13:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def _base(table: str, *columns: sa.Column) -> None:
    op.create_table(
        table, *columns,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('district_id', sa.Integer(), nullable=False),
        sa.Column('sourced_id', sa.String(length=255), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('date_last_modified', sa.DateTime(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.Column('row_hash', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('district_id', 'sourced_id', name=f'uq_{table}_district_sourced_id'),
    )
    op.create_index(f'ix_{table}_district_modified', table, ['district_id', 'date_last_modified'])
    op.create_index(f'ix_{table}_district_status', table, ['district_id', 'status'])


def upgrade() -> None:
    _base('resources',
          sa.Column('vendor_resource_id', sa.String(length=255), nullable=False),
          sa.Column('title', sa.String(length=255), nullable=True),
          sa.Column('roles', sa.JSON(), nullable=True),
          sa.Column('importance', sa.String(length=64), nullable=True),
          sa.Column('vendor_id', sa.String(length=255), nullable=True),
          sa.Column('application_id', sa.String(length=255), nullable=True))
    op.create_index('ix_resources_district_id_id', 'resources', ['district_id', 'id'])
    for table, owner in (('class_resources', 'class_sourced_id'),
                         ('course_resources', 'course_sourced_id')):
        _base(table,
              sa.Column('title', sa.String(length=255), nullable=True),
              sa.Column(owner, sa.String(length=255), nullable=False),
              sa.Column('resource_sourced_id', sa.String(length=255), nullable=False))
        op.create_index(f'ix_{table}_district_id_{owner}', table, ['district_id', owner])
        op.create_index(f'ix_{table}_district_id_resource_sourced_id', table,
                        ['district_id', 'resource_sourced_id'])
    _base('user_resources',
          sa.Column('user_sourced_id', sa.String(length=255), nullable=False),
          sa.Column('org_sourced_id', sa.String(length=255), nullable=True),
          sa.Column('class_sourced_id', sa.String(length=255), nullable=True),
          sa.Column('resource_sourced_id', sa.String(length=255), nullable=False))
    op.create_index('ix_user_resources_district_id_user_sourced_id', 'user_resources',
                    ['district_id', 'user_sourced_id'])
    op.create_index('ix_user_resources_district_id_resource_sourced_id', 'user_resources',
                    ['district_id', 'resource_sourced_id'])


def downgrade() -> None:
    for table in ('user_resources', 'course_resources', 'class_resources', 'resources'):
        op.drop_table(table)
