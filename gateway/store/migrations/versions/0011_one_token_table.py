"""One token table: the service tokens of LTI tools move into access_tokens beside the OneRoster
tokens of apps' clients, so that one bearer check serves every service. A token's ``kind`` says
which service takes it; a CHECK constraint ties each kind to its owner (a client and its district,
or a tool). Tokens move with their hashes, so every token issued before keeps working.

The downgrade moves the LTI tokens back; revoked ones are left behind, since the old table could
not say they were revoked.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# As gateway.store.apps has them now; written out so that this revision never changes.
OWNER_RULE = (
    "(kind = 'oneroster' AND app_client_id IS NOT NULL AND district_id IS NOT NULL"
    " AND tool_id IS NULL) OR (kind = 'lti' AND tool_id IS NOT NULL"
    " AND app_client_id IS NULL AND district_id IS NULL)")


def upgrade() -> None:
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        # Every token already here was issued to an app's client.
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                      server_default='oneroster'))
        batch_op.add_column(sa.Column('tool_id', sa.Integer(), nullable=True))
        batch_op.alter_column('app_client_id', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('district_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key('fk_access_tokens_tool_id', 'lti_tools', ['tool_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.create_index('ix_access_tokens_tool_id', ['tool_id'], unique=False)
    op.execute(
        "INSERT INTO access_tokens (token_hash, kind, tool_id, scope, issued_at, expires_at) "
        "SELECT token_hash, 'lti', tool_id, scope, issued_at, expires_at FROM lti_access_tokens")
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=16), server_default=None)
        batch_op.create_check_constraint('ck_access_tokens_owner', OWNER_RULE)
    with op.batch_alter_table('lti_access_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_lti_access_tokens_tool')
    op.drop_table('lti_access_tokens')


def downgrade() -> None:
    op.create_table('lti_access_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('tool_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tool_id'], ['lti_tools.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('lti_access_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_lti_access_tokens_tool', ['tool_id'], unique=False)
    op.execute(
        "INSERT INTO lti_access_tokens (token_hash, tool_id, scope, issued_at, expires_at) "
        "SELECT token_hash, tool_id, scope, issued_at, expires_at FROM access_tokens "
        "WHERE kind = 'lti' AND revoked_at IS NULL")
    op.execute("DELETE FROM access_tokens WHERE kind = 'lti'")
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('ck_access_tokens_owner', type_='check')
        batch_op.drop_index('ix_access_tokens_tool_id')
        batch_op.drop_constraint('fk_access_tokens_tool_id', type_='foreignkey')
        batch_op.drop_column('tool_id')
        batch_op.drop_column('kind')
        batch_op.alter_column('district_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('app_client_id', existing_type=sa.Integer(), nullable=False)
