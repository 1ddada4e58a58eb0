"""Ledger: the per-student lookup moves from a secondary index on ledger_entry_users, which every
append had to update at a hundred random places, to ledger_user_index, filled in batches; the
head keeps how far it is filled (indexed_seq).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 16:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ledger_user_index',
        sa.Column('district_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('user_sourced_id', sa.String(length=255), nullable=False),
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint('district_id', 'user_sourced_id', 'seq'),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table('ledger_heads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('indexed_seq', sa.BigInteger(), nullable=False,
                                      server_default='0'))
    op.execute("INSERT INTO ledger_user_index (district_id, user_sourced_id, seq) "
               "SELECT district_id, user_sourced_id, seq FROM ledger_entry_users")
    op.execute("UPDATE ledger_heads SET indexed_seq = seq")
    with op.batch_alter_table('ledger_entry_users', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entry_users_user')


def downgrade() -> None:
    with op.batch_alter_table('ledger_entry_users', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entry_users_user', ['district_id', 'user_sourced_id', 'seq'],
                              unique=False)
    with op.batch_alter_table('ledger_heads', schema=None) as batch_op:
        batch_op.drop_column('indexed_seq')
    op.drop_table('ledger_user_index')
