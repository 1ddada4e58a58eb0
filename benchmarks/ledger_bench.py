"""Disclosure-ledger benchmark: what the ledger adds per million records served, what an append
costs, and how ``gateway ledger student`` and ``gateway ledger verify`` scale.

    .venv/bin/python benchmarks/ledger_bench.py growth [--backend sqlite|postgresql|both]
    cd /work/main && .venv/bin/python /work/wt-ledger/benchmarks/ledger_bench.py growth --code .
    .venv/bin/python benchmarks/ledger_bench.py scale --students 100000 [--backend ...]

growth (runs on any version of the gateway: ``--code DIR`` imports the ``gateway`` package of DIR,
e.g. a checkout of main for the scheme before spans): ``--apps`` apps each page through
``--students`` students, 100 records a page, each page appended through
:func:`gateway.sharing.ledger.record_disclosure` in its own transaction, as a request would (the
fields of one plan per app). The first full sync is reported apart (it creates each person's
spans), then ``--syncs`` - 1 more (which update them in place). For each: the rows and bytes the
ledger's tables gained (SQLite: ``dbstat`` of the ledger file; PostgreSQL:
``pg_total_relation_size`` after a plain VACUUM, as autovacuum would run), scaled to a million
records served; the append's CPU per page (this process, plus on PostgreSQL the server backend's
CPU from /proc) and wall time. Then ``student_disclosures`` latency for random students and the
time of a full ``verify_ledger``.

scale (this version only): bulk-writes the spans of ``--students`` students x ``--apps`` apps x
``--plans`` field plans (what years of syncs leave) with a consistent seal, plus ``--entries``
chained entries, then times lookups and a full verify, and extrapolates verify to a billion
records served (see ``extrapolate``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _code_root() -> Path:
    # Before anything imports gateway: which checkout's package to measure.
    if "--code" in sys.argv:
        return Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
    return ROOT


CODE = _code_root()
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(CODE))

from sqlalchemy import inspect, text  # noqa: E402

from gateway.sharing import ledger  # noqa: E402
from gateway.store import Database  # noqa: E402
from benchdb import DEFAULT_PG, database_url, reset_database  # noqa: E402

DISTRICT = 1
START = dt.datetime(2026, 8, 20, 7)
PLANS = [("user", ["familyName:initial", "givenName", "roles", "sourcedId:pseudonym"]),
         ("enrollment", ["class", "role", "sourcedId", "user:pseudonym"]),
         ("demographics", ["birthDate:year", "sex", "sourcedId:pseudonym"])]
PAGE = 100


def student_id(n: int) -> str:
    return f"stu-{n:07d}"


def reset(backend: str, args: argparse.Namespace, name: str) -> Database:
    """An empty database at this code's newest schema, with one district and the apps."""
    database = Database(reset_database(backend, args.workdir, args.postgresql_url, name))
    with database.session_scope() as session:
        session.execute(text("INSERT INTO districts (id, sourced_id, name, created_at, "
                             "data_version) VALUES (1, 'district-1', 'Bench District', :now, 0)"),
                        {"now": START})
        for app_id in range(1, args.apps + 1):
            session.execute(text("INSERT INTO apps (id, name, created_at) VALUES (:id, :n, :t)"),
                            {"id": app_id, "n": f"App {app_id}", "t": START})
    return database


def ledger_tables(database: Database) -> list[str]:
    schema = "ledger" if database.dialect == "sqlite" else None
    return sorted(t for t in inspect(database.engine).get_table_names(schema=schema)
                  if t.startswith("ledger_"))


def footprint(database: Database) -> tuple[int, int]:
    """(rows, bytes) of the ledger's tables, their indexes included."""
    rows = size = 0
    tables = ledger_tables(database)
    with database.engine.connect() as conn:
        for table in tables:
            rows += conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        if database.dialect == "sqlite":
            size = conn.execute(text("SELECT coalesce(sum(pgsize), 0) FROM dbstat('ledger') "
                                     "WHERE name NOT LIKE 'sqlite_%'")).scalar_one()
        else:
            raw = conn.connection.driver_connection
            raw.commit()
            raw.autocommit = True
            with raw.cursor() as cursor:
                for table in tables:
                    cursor.execute(f"VACUUM {table}")
            raw.autocommit = False
            size = sum(conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t}
                                    ).scalar_one() for t in tables)
    return rows, size


def backend_cpu(database: Database) -> tuple[int | None, callable]:
    """The PostgreSQL backend pid the (single, reused) pooled connection runs on, and a reader
    of its CPU seconds; (None, zero) on SQLite."""
    if database.dialect != "postgresql":
        return None, lambda: 0.0
    with database.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / ticks
    return pid, read


def serve_sync(database: Database, args: argparse.Namespace, sync: int, clock: list) -> dict:
    """Every app pages through every student once; returns CPU and wall per page."""
    pages = 0
    _, server = backend_cpu(database)
    cpu0, server0, wall0 = time.process_time(), server(), time.perf_counter()
    for app_id in range(1, args.apps + 1):
        entity, fields = PLANS[(app_id - 1) % args.plans]
        for first in range(0, args.students, PAGE):
            users = [student_id(n) for n in range(first, min(first + PAGE, args.students))]
            clock[0] += dt.timedelta(milliseconds=50)
            with database.session_scope() as session:
                ledger.record_disclosure(session, app_id=app_id, district_id=DISTRICT,
                                         channel="rest", endpoint=f"/{entity}?offset={first}",
                                         entity=entity, fields=fields, users=users,
                                         record_count=len(users), now=clock[0])
            pages += 1
    return {"pages": pages, "records": args.students * args.apps,
            "cpu_ms": (time.process_time() - cpu0) * 1000 / pages,
            "server_ms": (server() - server0) * 1000 / pages,
            "wall_ms": (time.perf_counter() - wall0) * 1000 / pages}


def time_lookups(database: Database, students: int, lookups: int, seed: int) -> dict:
    rng = random.Random(seed)
    times, counts = [], []
    with database.sessionmaker() as session:
        ledger.student_disclosures(session, DISTRICT, student_id(0))  # warm: statement caches
        for _ in range(lookups):
            sid = student_id(rng.randrange(students))
            began = time.perf_counter()
            found = ledger.student_disclosures(session, DISTRICT, sid, limit=20)
            times.append((time.perf_counter() - began) * 1000)
            counts.append(found.total)
        session.rollback()
    ordered = sorted(times)
    return {"p50_ms": statistics.median(times),
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max_ms": max(times), "mean_disclosures": statistics.mean(counts)}


def print_lookups(lookups: dict, args: argparse.Namespace) -> None:
    print(f"lookup       student_disclosures x{args.lookups}: p50 {lookups['p50_ms']:.2f} ms, "
          f"p99 {lookups['p99_ms']:.2f} ms, max {lookups['max_ms']:.2f} ms "
          f"({lookups['mean_disclosures']:.0f} disclosures per student)", flush=True)


def fold_pending(database: Database) -> None:
    """Fold what is pending (versions with spans), so that a phase's footprint counts its spans,
    not people waiting for the next fold."""
    fold_all = getattr(ledger, "fold_all", None)
    if fold_all is not None:
        with database.session_scope() as session:
            fold_all(session, DISTRICT)


def time_verify(database: Database) -> tuple[float, object]:
    began = time.perf_counter()
    with database.sessionmaker() as session:
        result = ledger.verify_ledger(session, DISTRICT)
        session.rollback()
    return time.perf_counter() - began, result


def growth(backend: str, args: argparse.Namespace) -> None:
    label = "this branch" if CODE == ROOT else str(CODE)
    name = "ledger_growth" + ("" if CODE == ROOT else "_other")
    print(f"== growth, {backend}, code: {label}: {args.students:,} students x {args.apps} apps, "
          f"{args.syncs} full syncs of 100-record pages", flush=True)
    database = reset(backend, args, name)
    clock = [START]
    before = footprint(database)
    phases = []
    first = serve_sync(database, args, 1, clock)
    fold_pending(database)
    after_first = footprint(database)
    phases.append(("first sync", first, before, after_first))
    # Each later sync apart, measured after a plain VACUUM as autovacuum would run between
    # syncs: on PostgreSQL a span updated in place leaves its old version until vacuumed, and
    # the next sync's updates reuse that room.
    previous = after_first
    for n in range(2, args.syncs + 1):
        run = serve_sync(database, args, n, clock)
        fold_pending(database)
        now_at = footprint(database)
        phases.append((f"sync {n}", run, previous, now_at))
        previous = now_at
    for what, run, (rows0, bytes0), (rows1, bytes1) in phases:
        per_million = 1_000_000 / run["records"]
        print(f"{what:<12} {run['pages']:>7,} pages: +{(rows1 - rows0) * per_million:>12,.0f} "
              f"rows, +{(bytes1 - bytes0) * per_million / 2**20:>9,.1f} MiB per million records "
              f"served; append per page: CPU {run['cpu_ms']:.2f} ms here + "
              f"{run['server_ms']:.2f} ms server, wall {run['wall_ms']:.2f} ms", flush=True)
    rows, size = footprint(database)
    print(f"total        {rows:,} rows, {size / 2**20:,.1f} MiB in "
          f"{', '.join(ledger_tables(database))}", flush=True)
    print_lookups(time_lookups(database, args.students, args.lookups, args.seed), args)
    seconds, result = time_verify(database)
    print(f"verify       {result.entries:,} entries in {seconds:.2f} s "
          f"({'intact' if result.ok else result.problems[:2]})", flush=True)
    database.dispose()


def scale(backend: str, args: argparse.Namespace) -> None:
    """Spans of a large district written in bulk (as years of syncs leave them), sealed; then
    lookups and a verify."""
    spans_total = args.students * args.apps * args.plans
    print(f"== scale, {backend}: {args.students:,} students x {args.apps} apps x {args.plans} "
          f"plans = {spans_total:,} spans, {args.entries:,} entries", flush=True)
    database = reset(backend, args, "ledger_scale")
    began = time.perf_counter()
    fill_scale(database, args)
    print(f"fill         {time.perf_counter() - began:,.0f} s", flush=True)
    print_lookups(time_lookups(database, args.students, args.lookups, args.seed), args)
    seconds, result = time_verify(database)
    print(f"verify       {result.entries:,} entries, {result.spans:,} spans, {result.seals} seals "
          f"in {seconds:.1f} s ({'intact' if result.ok else result.problems[:2]})", flush=True)
    extrapolate(database, args, seconds, result)
    database.dispose()


def fill_scale(database: Database, args: argparse.Namespace) -> None:
    """``--entries`` chained entries of 100 people (their people folded) and the spans of every
    student x app x plan, with one seal whose set hash matches them."""
    import hashlib

    rng = random.Random(args.seed)
    plan_ids = []
    with database.session_scope() as session:
        for entity, fields in PLANS[:args.plans]:
            plan_ids.append(session.execute(text(
                "INSERT INTO ledger_plans (entity, fields, digest) VALUES (:e, :f, :d) "
                "RETURNING id"), {"e": entity, "f": ledger.canonical_json(fields).decode(),
                                  "d": ledger.plan_digest(entity, fields)}).scalar_one())
    prev, at, people = ledger.GENESIS, START, 0
    entries = []
    for seq in range(1, args.entries + 1):
        at += dt.timedelta(seconds=1)
        plan = (seq - 1) % args.plans
        entity, fields = PLANS[plan]
        users = sorted(student_id(rng.randrange(args.students)) for _ in range(PAGE))
        digest = ledger.people_digest(users)
        app_id = 1 + (seq - 1) % args.apps
        hashed = ledger.entry_hash(prev_hash=prev, district_id=DISTRICT, app_id=app_id,
                                   channel="rest", endpoint=f"/{entity}", disclosed_at=at,
                                   entity=entity, fields=fields, record_count=PAGE, people=digest)
        entries.append({"d": DISTRICT, "s": seq, "a": app_id, "c": "rest", "e": f"/{entity}",
                        "t": at, "n": entity, "f": ledger.canonical_json(fields).decode(),
                        "r": PAGE, "p": digest, "v": prev, "h": hashed})
        prev = hashed
    with database.session_scope() as session:
        for start in range(0, len(entries), 20_000):
            session.execute(text(
                "INSERT INTO ledger_entries (district_id, seq, app_id, channel, endpoint, "
                "disclosed_at, entity, fields, record_count, people_digest, prev_hash, hash) "
                "VALUES (:d, :s, :a, :c, :e, :t, :n, :f, :r, :p, :v, :h)"),
                entries[start:start + 20_000])
        session.execute(text("INSERT INTO ledger_heads (district_id, seq, hash) "
                             "VALUES (:d, :s, :h)"), {"d": DISTRICT, "s": args.entries, "h": prev})
    accumulator, people = 0, 0
    batch = []
    last_seq = max(args.entries, 1)
    with database.engine.connect() as conn:
        raw = conn.connection.driver_connection
        cursor = raw.cursor()
        marker = "?" if database.dialect == "sqlite" else "%s"
        insert = (f"INSERT INTO ledger_spans (district_id, user_sourced_id, app_id, plan_id, "
                  f"first_at, last_at, count, last_seq) VALUES ({', '.join([marker] * 8)})")
        first_at, last_at = START, at
        stamp = (lambda v: v.strftime("%Y-%m-%d %H:%M:%S.%f")) if database.dialect == "sqlite" \
            else (lambda v: v)
        for n in range(args.students):
            user = student_id(n)
            for app_id in range(1, args.apps + 1):
                for plan, plan_id in enumerate(plan_ids):
                    count = 1 + rng.randrange(400)
                    entity, fields = PLANS[plan]
                    accumulator += ledger.span_element(ledger.span_line(
                        DISTRICT, user, app_id, entity, ledger.canonical_json(fields).decode(),
                        first_at, last_at, count, last_seq))
                    people += count
                    batch.append((DISTRICT, user, app_id, plan_id, stamp(first_at), stamp(last_at),
                                  count, last_seq))
            if len(batch) >= 50_000:
                cursor.executemany(insert, batch)
                batch.clear()
        if batch:
            cursor.executemany(insert, batch)
        raw.commit()
    set_hash = ledger.set_hash_hex(accumulator)
    seal = {"district_id": DISTRICT, "seq": 1, "from_seq": 1, "to_seq": last_seq,
            "entry_hash": prev, "people": people, "spans": args.students * args.apps * args.plans,
            "changes": hashlib.sha256(b"bulk").hexdigest(), "accumulator": set_hash,
            "sealed_at": at, "legacy_hash": None, "prev_hash": ledger.GENESIS}
    seal["hash"] = ledger.seal_hash(**seal)
    with database.session_scope() as session:
        session.execute(text(
            "INSERT INTO ledger_seals (district_id, seq, from_seq, to_seq, entry_hash, people, "
            "spans, changes, accumulator, sealed_at, legacy_hash, prev_hash, hash) VALUES "
            "(:district_id, :seq, :from_seq, :to_seq, :entry_hash, :people, :spans, :changes, "
            ":accumulator, :sealed_at, :legacy_hash, :prev_hash, :hash)"), seal)
        session.execute(text(
            "INSERT INTO ledger_folds (district_id, folded_seq, seal_seq, seal_hash, accumulator, "
            "people) VALUES (:d, :f, 1, :h, :a, :p)"),
            {"d": DISTRICT, "f": args.entries, "h": seal["hash"], "a": set_hash, "p": people})
    if database.dialect == "postgresql":
        with database.engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.commit()
            raw.autocommit = True
            with raw.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE ledger_spans")
                cursor.execute("VACUUM ANALYZE ledger_entries")
            raw.autocommit = False  # the connection goes back to the pool


def extrapolate(database: Database, args: argparse.Namespace, seconds: float, result) -> None:
    """Verify at a billion records served: its entries (one per 100-record page: 10 million)
    scale with the per-entry rate measured here, its spans with the per-span rate; the spans of
    a state are at most people x apps x plans whatever was served."""
    entry_s = span_s = None
    with database.sessionmaker() as session:
        # Split the verify's time: spans alone (the set hash), the rest is entries.
        from sqlalchemy import select

        fold = session.execute(select(ledger._FOLDS).where(
            ledger._FOLDS.c.district_id == DISTRICT)).one()
        began = time.perf_counter()
        ledger._verify_spans(session, DISTRICT, fold, lambda *a: None)
        span_seconds = time.perf_counter() - began
        session.rollback()
    if result.spans:
        span_s = span_seconds / result.spans
    if result.entries:
        entry_s = max(seconds - span_seconds, 0.0) / result.entries
    entries_1b = 1_000_000_000 // PAGE
    spans_state = args.state_people * args.apps * args.plans
    if entry_s and span_s:
        total = entries_1b * entry_s + spans_state * span_s
        print(f"extrapolate  verify at 1e9 records served = {entries_1b:,} entries x "
              f"{entry_s * 1e6:.1f} us + {spans_state:,} spans ({args.state_people:,} people x "
              f"{args.apps} apps x {args.plans} plans) x {span_s * 1e6:.1f} us = "
              f"{total / 60:,.0f} min ({total / 3600:.1f} h) on one core", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("growth", "scale"))
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the checkout whose gateway package to measure (growth)")
    parser.add_argument("--students", type=int, default=10_000)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--plans", type=int, default=3)
    parser.add_argument("--syncs", type=int, default=5)
    parser.add_argument("--entries", type=int, default=100_000, help="scale: chained entries")
    parser.add_argument("--state-people", type=int, default=5_000_000,
                        help="scale: people of the state the verify is extrapolated to")
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--postgresql-url", default=DEFAULT_PG)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        (growth if args.mode == "growth" else scale)(backend, args)


if __name__ == "__main__":
    main()
