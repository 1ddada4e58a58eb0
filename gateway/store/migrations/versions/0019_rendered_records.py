"""Each roster record's REST rendering, kept beside the row (``rendered``, ``rendered_fields``).

The next import of a district renders every record of it that has none; until then the REST
service renders such records per request, as before.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 09:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

TABLES = ('orgs', 'academic_sessions', 'courses', 'classes', 'users', 'enrollments', 'demographics')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column('rendered', sa.LargeBinary(), nullable=True))
            batch_op.add_column(sa.Column('rendered_fields', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column('rendered_fields')
            batch_op.drop_column('rendered')
