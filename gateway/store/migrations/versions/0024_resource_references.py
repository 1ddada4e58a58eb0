"""Users, classes and courses are served with their ``resources`` (issue 18): the references their
active links of classResources, courseResources and userResources give them. Renderings made
before hold none, so those of the records that have such links are cleared; ``gateway db
upgrade`` renders them again right after migrating (until then, or without that pass, the REST
service serves a record without rendering from its rows, as before 0019). Each district whose
renderings are cleared gets a new data version, so that nothing a process remembered of the old
renderings is served again.

Going down clears the same renderings: the older code would otherwise serve the references.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 23:20:00
"""
from alembic import op


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

# The owner table, its links and the links' owner column.
LINKS = (('users', 'user_resources', 'user_sourced_id'),
         ('classes', 'class_resources', 'class_sourced_id'),
         ('courses', 'course_resources', 'course_sourced_id'))


def _clear_linked_renderings() -> None:
    for table, links, owner in LINKS:
        op.execute(f"""
            UPDATE {table} SET rendered = NULL
            WHERE rendered IS NOT NULL
              AND EXISTS (SELECT 1 FROM {links} l
                          WHERE l.district_id = {table}.district_id
                            AND l.{owner} = {table}.sourced_id AND l.status <> 'tobedeleted')""")
    linked = " UNION ".join(f"SELECT district_id FROM {links} WHERE status <> 'tobedeleted'"
                            for _, links, _ in LINKS)
    op.execute(f"""
        UPDATE districts SET data_version = COALESCE(data_version, 0) + 1
        WHERE id IN ({linked})""")


def upgrade() -> None:
    _clear_linked_renderings()


def downgrade() -> None:
    _clear_linked_renderings()
