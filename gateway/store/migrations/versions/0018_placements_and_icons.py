"""Launchpad placements beyond a class (a school, the whole district, for everyone or for staff
only), tool icons, and the indexes of the console's ledger search (by app and time, by time).

A resource link placed at a school or district-wide has no class (its launch carries no context
claim, LTI 1.3 Core §5.4.1 makes it optional), so ``class_sourced_id`` becomes nullable; the
icon is a URL, or an image uploaded and kept in the store, in a table of its own.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-05 07:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0016'
branch_labels = None
depends_on = None


def _ledger_schema() -> str | None:
    # On SQLite the ledger lives in its own file, attached as "ledger" (0007).
    return "ledger" if op.get_bind().dialect.name == "sqlite" else None


def upgrade() -> None:
    with op.batch_alter_table('lti_resource_links') as batch_op:
        batch_op.alter_column('class_sourced_id', existing_type=sa.String(length=255), nullable=True)
        batch_op.add_column(sa.Column('placement', sa.String(length=16), nullable=False,
                                      server_default='class'))
        batch_op.add_column(sa.Column('school_sourced_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('audience', sa.String(length=16), nullable=False,
                                      server_default='everyone'))
        batch_op.create_index('ix_lti_resource_links_placement', ['district_id', 'placement'],
                              unique=False)
    op.create_table(
        'lti_tool_icons',
        sa.Column('tool_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.Text(), nullable=True),
        sa.Column('image', sa.LargeBinary(), nullable=True),
        sa.Column('media_type', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['tool_id'], ['lti_tools.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tool_id'),
    )


    # The console's ledger search, by app and time or by time (two index updates per entry; an
    # entry is one response, not one person).
    op.create_index('ix_ledger_entries_app_time', 'ledger_entries',
                    ['district_id', 'app_id', 'disclosed_at'], unique=False, schema=_ledger_schema())
    op.create_index('ix_ledger_entries_time', 'ledger_entries', ['district_id', 'disclosed_at'],
                    unique=False, schema=_ledger_schema())


def downgrade() -> None:
    op.drop_index('ix_ledger_entries_time', table_name='ledger_entries', schema=_ledger_schema())
    op.drop_index('ix_ledger_entries_app_time', table_name='ledger_entries',
                  schema=_ledger_schema())
    op.drop_table('lti_tool_icons')
    op.execute("DELETE FROM lti_resource_links WHERE class_sourced_id IS NULL")
    with op.batch_alter_table('lti_resource_links') as batch_op:
        batch_op.drop_index('ix_lti_resource_links_placement')
        batch_op.drop_column('audience')
        batch_op.drop_column('school_sourced_id')
        batch_op.drop_column('placement')
        batch_op.alter_column('class_sourced_id', existing_type=sa.String(length=255), nullable=False)
