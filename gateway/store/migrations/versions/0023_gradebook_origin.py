"""Gradebook records imported from SIS CSV files (issue 18): who wrote each line item, result,
category and score scale (``origin``: ``sis`` for the importer, ``app`` for the REST service and
LTI AGS; every existing record was written by an app), the imported row's fingerprint
(``row_hash``, so an unchanged row is not rewritten), and a score scale's org.

A bulk gradebook file replaces only the SIS's records: ``origin`` is what keeps it from retiring
what apps wrote. See :mod:`gateway.oneroster.csv.gradebook`.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 23:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

_TABLES = ('gradebook_categories', 'score_scales', 'line_items', 'results')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('origin', sa.String(length=8), nullable=False,
                                       server_default='app'))
            batch.add_column(sa.Column('row_hash', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('score_scales') as batch:
        batch.add_column(sa.Column('org_sourced_id', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('score_scales') as batch:
        batch.drop_column('org_sourced_id')
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('row_hash')
            batch.drop_column('origin')
