"""Disclosure-ledger benchmark: fill a district's ledger with millions of hash-chained entries, then
time ``gateway ledger student`` lookups and single appends on it.

    .venv/bin/python benchmarks/ledger_bench.py --entries 10000000 [--backend sqlite|postgresql|both]

Fill (the fast path, not the request path): entries are generated in seq order with their real
chain hashes (:func:`gateway.sharing.ledger.entry_hash`) and written with the bare driver in large
batches (executemany on SQLite, COPY on PostgreSQL) into the store's own tables and indexes, so the
result verifies with ``gateway ledger verify`` (on PostgreSQL it is then vacuumed, as autovacuum
would soon do to an insert-only table). The mix imitates what apps read: 75% of entries
name one student (by-id reads, LTI launches), 20% two to five, 5% ten to thirty (small pages),
spread uniformly over ``--students`` students and ``--apps`` apps.

Then, on the filled ledger:
  lookup   :func:`gateway.sharing.ledger.student_disclosures` for ``--lookups`` random students
           (the whole service call: index range scan, primary-key reads, per-app summary);
           prints p50/p99/max and entries per student (target: under 100 ms);
  append   :func:`gateway.sharing.ledger.record_disclosure` of a 100-student page, each in its
           own transaction (head lock, entry, users, head, commit), p50/p99;
  verify   (``--verify``) the whole chain recomputed.

``--reuse`` measures the ledger a previous run left (lookups and appends only).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from gateway.sharing.ledger import (GENESIS, entry_hash, record_disclosure,  # noqa: E402
                                    student_disclosures, verify_ledger)
from gateway.store import Database  # noqa: E402
from benchdb import DEFAULT_PG, database_url, reset_database  # noqa: E402

NAME = "ledger_bench"
DISTRICT = 1
BATCH = 100_000
START = dt.datetime(2024, 8, 1)
FIELDS = [["familyName:initial", "givenName", "roles", "sourcedId:pseudonym"],
          ["class", "role", "sourcedId", "user:pseudonym"],
          ["birthDate:year", "sex", "sourcedId:pseudonym"]]
ENTITIES = ["user", "enrollment", "demographics"]
ENDPOINTS = ["/ims/oneroster/rostering/v1p2/students", "/ims/oneroster/rostering/v1p2/enrollments",
             "/ims/oneroster/rostering/v1p2/demographics"]


def reset(backend: str, workdir: Path, pg_url: str) -> Database:
    """An empty database at the newest schema, with one district."""
    database = Database(reset_database(backend, workdir, pg_url, NAME))
    with database.session_scope() as session:
        session.execute(text("INSERT INTO districts (id, sourced_id, name, created_at, data_version) "
                             "VALUES (1, 'district-1', 'Bench District', :now, 0)"),
                        {"now": START})
        for app_id in range(1, 21):
            session.execute(text("INSERT INTO apps (id, name, created_at) VALUES (:id, :name, :now)"),
                            {"id": app_id, "name": f"App {app_id}", "now": START})
    return database


def student_id(n: int) -> str:
    return f"stu-{n:07d}"


def generate(entries: int, students: int, apps: int, seed: int):
    """Yield (entry row, users) in seq order, with the chain's real hashes."""
    rng = random.Random(seed)
    prev = GENESIS
    # Ten million entries over two school years: one every ~6 seconds.
    step = dt.timedelta(seconds=max(1, (2 * 365 * 86400) // max(entries, 1)))
    at = START
    fields_json = [json.dumps(fields) for fields in FIELDS]
    draw = rng.random
    for seq in range(1, entries + 1):
        roll = draw()
        size = 1 if roll < 0.75 else 2 + int(draw() * 4) if roll < 0.95 else 10 + int(draw() * 21)
        users = sorted({student_id(int(draw() * students)) for _ in range(size)})
        kind = int(draw() * 3)
        app_id = 1 + int(draw() * apps)
        at = at + step
        digest = entry_hash(prev_hash=prev, district_id=DISTRICT, app_id=app_id, channel="rest",
                            endpoint=ENDPOINTS[kind], disclosed_at=at, entity=ENTITIES[kind],
                            fields=FIELDS[kind], record_count=len(users), users=users)
        yield ((DISTRICT, seq, app_id, "rest", ENDPOINTS[kind], at, ENTITIES[kind],
                fields_json[kind], len(users), prev, digest), users)
        prev = digest


def fill(database: Database, backend: str, entries: int, students: int, apps: int,
         seed: int) -> dict:
    """Bulk-write the ledger; returns counts and timings."""
    start = time.perf_counter()
    links = 0
    last = (0, GENESIS)
    with database.engine.connect() as conn:
        raw = conn.connection.driver_connection
        cursor = raw.cursor()
        if backend == "sqlite":
            cursor.execute("PRAGMA cache_size=-2097152")  # 2 GiB: the user index grows randomly
            cursor.execute("PRAGMA synchronous=OFF")
        else:
            raw.commit()  # leave the connection's implicit transaction: VACUUM needs none
        batch_entries: list[tuple] = []
        batch_users: list[tuple] = []

        def flush() -> None:
            if backend == "sqlite":
                cursor.execute("BEGIN")
                cursor.executemany(
                    "INSERT INTO ledger_entries (district_id, seq, app_id, channel, endpoint, "
                    "disclosed_at, entity, fields, record_count, prev_hash, hash) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [row[:5] + (row[5].strftime("%Y-%m-%d %H:%M:%S.%f"),) + row[6:]
                     for row in batch_entries])
                cursor.executemany("INSERT INTO ledger_entry_users (district_id, seq, "
                                   "user_sourced_id) VALUES (?,?,?)", batch_users)
                cursor.executemany("INSERT INTO ledger_user_index (district_id, seq, "
                                   "user_sourced_id) VALUES (?,?,?)", batch_users)
                cursor.execute("COMMIT")
            else:
                with cursor.copy("COPY ledger_entries (district_id, seq, app_id, channel, "
                                 "endpoint, disclosed_at, entity, fields, record_count, "
                                 "prev_hash, hash) FROM STDIN") as copy:
                    for row in batch_entries:
                        copy.write_row(row)
                for table in ("ledger_entry_users", "ledger_user_index"):
                    with cursor.copy(f"COPY {table} (district_id, seq, user_sourced_id) "
                                     "FROM STDIN") as copy:
                        for row in batch_users:
                            copy.write_row(row)
                raw.commit()
            batch_entries.clear()
            batch_users.clear()

        for row, users in generate(entries, students, apps, seed):
            batch_entries.append(row)
            batch_users.extend((DISTRICT, row[1], user) for user in users)
            links += len(users)
            last = (row[1], row[10])
            if len(batch_entries) >= BATCH:
                flush()
                done = row[1]
                if done % 1_000_000 == 0:
                    rate = done / (time.perf_counter() - start)
                    print(f"  {done:>11,} entries  {rate:>9,.0f}/s", flush=True)
        if batch_entries:
            flush()
        if backend == "postgresql":
            # What autovacuum does to an insert-only table soon after: statistics, and the
            # visibility map that lets the student index be read without visiting the heap.
            raw.autocommit = True
            cursor.execute("VACUUM ANALYZE ledger_entries")
            cursor.execute("VACUUM ANALYZE ledger_entry_users")
            cursor.execute("VACUUM ANALYZE ledger_user_index")
            raw.autocommit = False
        # Everything indexed, as after the last batch (the tail a lookup also reads is shorter
        # than ledger.INDEX_BATCH entries: a primary-key range, negligible beside the index).
        conn.execute(text("INSERT INTO ledger_heads (district_id, seq, hash, indexed_seq) "
                          "VALUES (:d, :s, :h, :s)"),
                     {"d": DISTRICT, "s": last[0], "h": last[1]})
        conn.commit()
    return {"entries": entries, "links": links, "seconds": time.perf_counter() - start}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_lookups(database: Database, students: int, lookups: int, seed: int) -> dict:
    rng = random.Random(seed + 1)
    times, counts = [], []
    with database.sessionmaker() as session:
        for _ in range(lookups):
            sid = student_id(rng.randrange(students))
            began = time.perf_counter()
            found = student_disclosures(session, DISTRICT, sid, limit=100)
            times.append((time.perf_counter() - began) * 1000)
            counts.append(found.total)
        session.rollback()
    return {"p50_ms": statistics.median(times), "p99_ms": percentile(times, 0.99),
            "max_ms": max(times), "mean_entries": statistics.mean(counts),
            "max_entries": max(counts)}


def time_appends(database: Database, students: int, appends: int) -> dict:
    rng = random.Random(7)
    times = []
    for _ in range(appends):
        users = [student_id(rng.randrange(students)) for _ in range(100)]
        began = time.perf_counter()
        with database.session_scope() as session:
            record_disclosure(session, app_id=1, district_id=DISTRICT, channel="rest",
                              endpoint="/ims/oneroster/rostering/v1p2/students", entity="user",
                              fields=FIELDS[0], users=users, record_count=100,
                              now=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
        times.append((time.perf_counter() - began) * 1000)
    return {"p50_ms": statistics.median(times), "p99_ms": percentile(times, 0.99)}


def run(backend: str, args: argparse.Namespace) -> None:
    print(f"== {backend}: {args.entries:,} entries, {args.students:,} students, {args.apps} apps",
          flush=True)
    if not args.reuse:
        database = reset(backend, args.workdir, args.postgresql_url)
        filled = fill(database, backend, args.entries, args.students, args.apps, args.seed)
        print(f"fill     {filled['entries']:,} entries, {filled['links']:,} entry-student rows in "
              f"{filled['seconds']:,.0f} s ({filled['entries'] / filled['seconds']:,.0f} "
              f"entries/s)", flush=True)
        database.dispose()
    database = Database(database_url(backend, args.workdir, args.postgresql_url, NAME))
    lookups = time_lookups(database, args.students, args.lookups, args.seed)
    print(f"lookup   ledger student x{args.lookups}: p50 {lookups['p50_ms']:.2f} ms, "
          f"p99 {lookups['p99_ms']:.2f} ms, max {lookups['max_ms']:.2f} ms "
          f"({lookups['mean_entries']:.0f} entries per student on average, "
          f"max {lookups['max_entries']})", flush=True)
    appends = time_appends(database, args.students, args.appends)
    print(f"append   100-student entry, own transaction, x{args.appends}: "
          f"p50 {appends['p50_ms']:.2f} ms, p99 {appends['p99_ms']:.2f} ms", flush=True)
    if args.verify:
        began = time.perf_counter()
        with database.sessionmaker() as session:
            result = verify_ledger(session, DISTRICT)
        print(f"verify   {result.entries:,} entries in {time.perf_counter() - began:,.0f} s: "
              f"{'intact' if result.ok else result.problems[:3]}", flush=True)
    if backend == "sqlite":
        size = sum(p.stat().st_size for p in args.workdir.glob("ledger_bench*.sqlite3*"))
        print(f"size     {size / 2**30:.2f} GiB on disk", flush=True)
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verify", action="store_true", help="also time a full verify")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the ledger left by a previous run instead of filling one")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--postgresql-url", default=DEFAULT_PG)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run(backend, args)


if __name__ == "__main__":
    main()
