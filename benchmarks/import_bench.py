"""Import benchmark: generate a demo district, import it, and compare with the raw ceiling.

    .venv/bin/python benchmarks/import_bench.py --students 100000 [--backend sqlite|postgresql|both]

For each backend it measures, each step in a fresh child process (so its peak RSS is its own):
  ceiling   every rostering file parsed with csv.reader and inserted with the bare driver
            (executemany on SQLite, COPY on PostgreSQL) in one transaction, into tables with the
            same columns (as text) and the same indexes as the store's tables: what the rows
            cost with no validation, no reference checks and no change tracking;
  import    the gateway's import of the same bundle into an empty store (validation, staging,
            reference checks, counts, merge; one transaction);
  reimport  the same bundle again (every row compared; nothing changes).
It prints rows/s, wall time, peak RSS and the import/ceiling ratio (target: at least 0.5).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdb import DEFAULT_PG, reset_database  # noqa: E402
from gateway.oneroster.csv import binding  # noqa: E402

NAME = "bench"
BATCH = 5000


def step_ceiling(backend: str, bundle: Path, url: str) -> dict:
    """Parse every file with csv.reader and insert it with the bare driver, in one transaction."""
    from gateway.store import Database

    database = Database(url)
    rows = 0
    start = time.perf_counter()
    with database.engine.connect() as conn:
        raw = conn.connection.driver_connection
        cursor = raw.cursor()
        if backend == "sqlite":
            cursor.execute("PRAGMA cache_size=-262144")  # the same cache the importer uses
            cursor.execute("BEGIN")
        for csv_file in binding.ROSTERING_FILES:
            path = bundle / csv_file.filename
            if not path.exists():
                continue
            table = f"raw_{csv_file.table}"
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} (district_id INTEGER DEFAULT 1, "
                           + ", ".join(f'"{c}" TEXT' for c in csv_file.header) + ")")
            for number, statement in enumerate(_store_indexes(csv_file, table)):
                cursor.execute(statement)
            names = ", ".join(f'"{c}"' for c in csv_file.header)
            with open(path, newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                next(reader)
                if backend == "sqlite":
                    sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['?'] * len(csv_file.header))})"
                    batch: list[list[str]] = []
                    for row in reader:
                        batch.append(row)
                        if len(batch) == BATCH:
                            cursor.executemany(sql, batch)
                            rows += len(batch)
                            batch.clear()
                    cursor.executemany(sql, batch)
                    rows += len(batch)
                else:
                    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                        for row in reader:
                            copy.write_row(row)
                            rows += 1
        if backend == "sqlite":
            cursor.execute("COMMIT")
        else:
            raw.commit()
        cursor.close()
    database.dispose()
    return {"rows": rows, "seconds": time.perf_counter() - start}


def step_import(backend: str, bundle: Path, url: str) -> dict:
    """Run the gateway's import service as ``gateway import`` does, and commit."""
    from gateway.oneroster.csv.importer import ImportOptions, import_bundle
    from gateway.store import Database

    database = Database(url)
    start = time.perf_counter()
    with database.session_scope() as session:
        report = import_bundle(session, bundle, ImportOptions())
        if report.outcome != "applied":
            raise SystemExit("import rejected: " + "; ".join(str(p) for p in report.problems[:5])
                             + (report.refusal or ""))
    seconds = time.perf_counter() - start
    database.dispose()
    counts = {name: c.to_dict() for name, c in report.files.items()}
    rows = sum(c["added"] + c["changed"] + c["unchanged"] for c in counts.values())
    return {"rows": rows, "seconds": seconds, "counts": counts}


def _store_indexes(csv_file: binding.CsvFile, table: str) -> list[str]:
    """CREATE INDEX statements giving the raw table the store table's indexes (columns renamed)."""
    from gateway.store.schema import metadata

    store_table = metadata.tables[csv_file.table]
    to_csv = {c.attribute: c.name for c in csv_file.columns}
    to_csv["district_id"] = "district_id"
    statements = []
    keys = [tuple(c.name for c in i.columns) for i in store_table.indexes]
    keys += [tuple(c.name for c in u.columns) for u in store_table.constraints
             if u.__class__.__name__ == "UniqueConstraint"]
    for number, key in enumerate(keys):
        if all(k in to_csv for k in key):
            columns = ", ".join(f'"{to_csv[k]}"' for k in key)
            statements.append(f"CREATE INDEX ix_{table}_{number} ON {table} ({columns})")
    return statements


STEPS = {"ceiling": step_ceiling, "import": step_import}


def run_step(step: str, backend: str, bundle: Path, url: str) -> dict:
    """Run one step in a child process; add its own peak RSS (from wait4) to its result."""
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([sys.executable, __file__, "--child", step, "--backend", backend,
                                    "--bundle", str(bundle), "--url", url], stdout=out)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"the {step} step on {backend} failed")
        out.seek(0)
        result = json.loads(out.read().decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def ensure_bundle(workdir: Path, students: int, schools: int) -> tuple[Path, int]:
    """Generate (once) the demo bundle for this size; return it and its number of users."""
    from gateway.demo import generate_demo_bundle

    bundle = workdir / f"demo-{students}"
    marker = bundle / ".complete"
    if not marker.exists():
        started = time.perf_counter()
        result = generate_demo_bundle(bundle, schools=schools, students=students, seed=1)
        marker.write_text(json.dumps(result.counts))
        print(f"generated {bundle} ({result.total_rows:,} rows) in {time.perf_counter() - started:.1f}s")
    counts = json.loads(marker.read_text())
    return bundle, counts["users.csv"]


def main() -> None:
    """Parse arguments, run every step for each backend, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=100000)
    parser.add_argument("--schools", type=int, default=0, help="default: one per 2,500 students")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--postgresql-url", default=DEFAULT_PG)
    parser.add_argument("--child", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--bundle", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(STEPS[args.child](args.backend, Path(args.bundle), args.url)))
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    schools = args.schools or max(3, args.students // 2500)
    bundle, users = ensure_bundle(args.workdir, args.students, schools)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    print(f"\n{args.students:,} students, {users:,} users, {schools} schools; bundle {bundle}")
    print(f"{'backend':<11}{'step':<10}{'rows':>12}{'seconds':>10}{'rows/s':>10}{'peak RSS MB':>13}")
    for backend in backends:
        url = reset_database(backend, args.workdir, args.postgresql_url, NAME)
        ceiling = run_step("ceiling", backend, bundle, url)
        reset_database(backend, args.workdir, args.postgresql_url, NAME)
        first = run_step("import", backend, bundle, url)
        again = run_step("import", backend, bundle, url)
        for name, r in (("ceiling", ceiling), ("import", first), ("reimport", again)):
            print(f"{backend:<11}{name:<10}{r['rows']:>12,}{r['seconds']:>10.1f}"
                  f"{r['rows'] / r['seconds']:>10,.0f}{r['peak_rss_mb']:>13.0f}")
        ratio = (first["rows"] / first["seconds"]) / (ceiling["rows"] / ceiling["seconds"])
        print(f"{backend:<11}import/ceiling speed ratio: {ratio:.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
