"""``gateway db upgrade`` renders what has no REST rendering: a store upgraded past migration
0019 keeps its rows unrendered (migrations do not run the serializer), and would serve them the
slow way until its next import."""
from __future__ import annotations

import json

from sqlalchemy import func, select, update

from gateway.cli import cli
from gateway.oneroster.rendering import RENDERED_ENTITIES
from gateway.store import rostering as store

from bundles import small_district, write_bundle


def unrendered_rows(database) -> int:
    with database.engine.connect() as conn:
        return sum(conn.execute(select(func.count()).select_from(store.ENTITY_TABLES[entity])
                                .where(store.ENTITY_TABLES[entity].c.rendered.is_(None)))
                   .scalar_one() for entity in RENDERED_ENTITIES)


def test_upgrade_renders_a_migrated_store_as_an_import_would(runner, database, tmp_path):
    imported = runner.invoke(cli, ["import", str(write_bundle(tmp_path / "small",
                                                              small_district())), "--json"])
    assert imported.exit_code == 0, imported.output
    with database.engine.begin() as conn:
        rendered_by_import = {
            entity: dict(conn.execute(select(store.ENTITY_TABLES[entity].c.id,
                                             store.ENTITY_TABLES[entity].c.rendered)).all())
            for entity in RENDERED_ENTITIES}
        # What migration 0019 leaves: every rendering missing.
        for entity in RENDERED_ENTITIES:
            conn.execute(update(store.ENTITY_TABLES[entity]).values(rendered=None,
                                                                    rendered_fields=None))
    missing = unrendered_rows(database)
    assert missing == sum(len(rows) for rows in rendered_by_import.values()) > 0

    result = runner.invoke(cli, ["db", "upgrade", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rendered"] == missing
    assert unrendered_rows(database) == 0
    with database.engine.connect() as conn:
        for entity in RENDERED_ENTITIES:
            table = store.ENTITY_TABLES[entity]
            assert dict(conn.execute(select(table.c.id, table.c.rendered)).all()) == \
                rendered_by_import[entity], entity

    again = runner.invoke(cli, ["db", "upgrade"])
    assert again.exit_code == 0 and "rendered" not in again.output
