"""SQLite: the disclosure ledger moves to a database file of its own, attached as ``ledger``.

Every read an app makes appends to the ledger; in the store's file those appends and an import's
long write transaction competed for SQLite's single write lock, and whichever waited longer than
the busy timeout failed. In a file of its own the ledger has its own lock (see
``gateway.store.ledger_database_path``). Statements name ledger tables unqualified, and SQLite
finds them in the attached file, so nothing else changes. PostgreSQL has row locks: nothing to do.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 16:00:00
"""
from alembic import op
from sqlalchemy import text


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

LEDGER_TABLES = ("ledger_heads", "ledger_entries", "ledger_entry_users", "ledger_user_index",
                 "ledger_checkpoints")


def _objects(conn, schema: str, table: str) -> list[tuple[str, str, str]]:
    """(type, name, sql) of a table and its explicit indexes in ``schema``, table first."""
    return conn.execute(text(
        f"SELECT type, name, sql FROM {schema}.sqlite_master WHERE tbl_name = :table "
        "AND sql IS NOT NULL ORDER BY type = 'index', name"), {"table": table}).all()


def _row_count(conn, schema: str, table: str) -> int:
    return conn.execute(text(f"SELECT count(*) FROM {schema}.{table}")).scalar_one()


def _move(source: str, target: str) -> None:
    """Move the ledger tables, their indexes and rows from ``source`` to ``target`` schema."""
    conn = op.get_bind()
    for table in LEDGER_TABLES:
        objects = _objects(conn, source, table)
        if not objects:
            continue
        if _objects(conn, target, table):
            if _row_count(conn, target, table) and not _row_count(conn, source, table):
                # Not an interrupted move (that leaves the source whole, as its DROP had not
                # committed): a ledger left by another store. Never overwrite a disclosure record.
                raise RuntimeError(
                    f"{target}.{table} already holds rows that this store's {source} schema does "
                    "not: a ledger file from another store lies beside this one. Move it away "
                    "(keep it: it is that store's disclosure record) and upgrade again.")
            conn.execute(text(f"DROP TABLE {target}.{table}"))
        for kind, name, sql in objects:
            # "CREATE TABLE ledger_heads (...)" / "CREATE INDEX ix ON ledger_entries (...)": the
            # schema goes before the object's own name (SQLite qualifies indexes that way too).
            keyword = "CREATE TABLE " if kind == "table" else "CREATE INDEX "
            if kind == "index" and sql.startswith("CREATE UNIQUE INDEX "):
                keyword = "CREATE UNIQUE INDEX "
            rest = sql[len(keyword):].lstrip()
            if rest.startswith(f'"{name}"'):
                rest = rest[len(name) + 2:]
            elif rest.startswith(name):
                rest = rest[len(name):]
            else:
                raise RuntimeError(f"unexpected definition of {name}: {sql}")
            conn.execute(text(f'{keyword}{target}."{name}"{rest}'))
        conn.execute(text(f"INSERT INTO {target}.{table} SELECT * FROM {source}.{table}"))
        conn.execute(text(f"DROP TABLE {source}.{table}"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _move("main", "ledger")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _move("ledger", "main")
