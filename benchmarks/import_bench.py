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

With --v1p1 it measures instead what reading OneRoster 1.1 costs: the district written as a 1.1
bundle (users.csv with orgSourcedIds and role, no roles.csv) and as its 1.2 twin (the roles that
the conversion makes, written as roles.csv: both import to the same store), each imported into an
empty store --repeat times, alternating; it prints the median wall and CPU seconds of each and the
1.1/1.2 ratio (target: at most 1.15). CPU is the import process's own (user + system); on
PostgreSQL the server's share is about the same for both, since it receives the same rows.
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

_V1P1_ROLE = {"districtAdministrator": "administrator", "siteAdministrator": "administrator",
              "principal": "administrator", "systemAdministrator": "administrator", "counselor": "aide"}


def ensure_v1p1_twins(bundle: Path) -> tuple[Path, Path]:
    """Write (once) the district as a OneRoster 1.1 bundle and as its 1.2 twin."""
    from gateway.formats.oneroster import (DISTRICT_LEVEL_ORG_TYPES, V1P1_FILES, V1P1_USERS_HEADER,
                                           role_sourced_id)

    v1p1, twin = bundle.parent / (bundle.name + "-v1p1"), bundle.parent / (bundle.name + "-v1p2-twin")
    marker = v1p1 / ".complete"
    if marker.exists():
        return v1p1, twin
    started = time.perf_counter()
    for target in (v1p1, twin):
        target.mkdir(exist_ok=True)
    with open(bundle / "orgs.csv", newline="", encoding="utf-8") as handle:
        org_types = {row["sourcedId"]: row["type"] for row in csv.DictReader(handle)}
    roles: dict[str, list[tuple[str, str, str]]] = {}
    with open(bundle / "roles.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            roles.setdefault(row["userSourcedId"], []).append((row["roleType"], row["role"], row["orgSourcedId"]))
    copied = [f.name for f in binding.ROSTERING_FILES if f.name not in ("users", "roles", "userProfiles")
              and (bundle / f.filename).exists()]
    for name in copied:
        for target in (v1p1, twin):
            (target / f"{name}.csv").write_bytes((bundle / f"{name}.csv").read_bytes())
    with open(bundle / "users.csv", newline="", encoding="utf-8") as source, \
            open(v1p1 / "users.csv", "w", newline="", encoding="utf-8") as old, \
            open(twin / "users.csv", "w", newline="", encoding="utf-8") as new, \
            open(twin / "roles.csv", "w", newline="", encoding="utf-8") as new_roles:
        old_writer, new_writer, roles_writer = csv.writer(old), csv.writer(new), csv.writer(new_roles)
        old_writer.writerow(V1P1_USERS_HEADER)
        new_writer.writerow(binding.USERS.header)
        roles_writer.writerow(binding.ROLES.header)
        for row in csv.DictReader(source):
            held = sorted(roles.get(row["sourcedId"], []), key=lambda r: r[0] != "primary")
            role = _V1P1_ROLE.get(held[0][1], held[0][1])
            orgs = [org for _, _, org in held]
            old_row = dict(row, role=role, orgSourcedIds=",".join(orgs))
            old_writer.writerow([old_row.get(c, "") for c in V1P1_USERS_HEADER])
            for c in ("userMasterIdentifier", "preferredGivenName", "preferredMiddleName", "preferredFamilyName",
                      "primaryOrgSourcedId", "pronouns"):
                row[c] = ""
            new_writer.writerow([row[c] for c in binding.USERS.header])
            for position, org in enumerate(orgs):
                # What the 1.1 role means at each org, by the README's conversion table.
                converted = role if role != "administrator" else (
                    "districtAdministrator" if org_types.get(org) in DISTRICT_LEVEL_ORG_TYPES
                    else "siteAdministrator")
                roles_writer.writerow([role_sourced_id(row["sourcedId"], org), "", "", row["sourcedId"],
                                       "primary" if position == 0 else "secondary", converted, "", "", org, ""])
    for target, version, files, extra in ((v1p1, "1.1", V1P1_FILES, ["users"]),
                                          (twin, "1.2", binding.ALL_FILE_NAMES, ["users", "roles"])):
        present = set(copied) | set(extra)
        with open(target / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(binding.MANIFEST_HEADER)
            writer.writerow(["manifest.version", "1.0"])
            writer.writerow(["oneroster.version", version])
            for name in files:
                writer.writerow([f"file.{name}", "bulk" if name in present else "absent"])
    marker.write_text("ok")
    print(f"wrote {v1p1} and {twin} in {time.perf_counter() - started:.1f}s")
    return v1p1, twin


def compare_v1p1(backend: str, bundle: Path, workdir: Path, pg_url: str, repeat: int) -> None:
    """Import the 1.1 bundle and its 1.2 twin into empty stores, alternating; print medians."""
    import statistics

    v1p1, twin = ensure_v1p1_twins(bundle)
    runs: dict[str, list[dict]] = {"1.2": [], "1.1": []}
    for _ in range(repeat):
        for version, path in (("1.2", twin), ("1.1", v1p1)):
            url = reset_database(backend, workdir, pg_url, NAME)
            runs[version].append(run_step("import", backend, path, url))
    rows = runs["1.2"][0]["rows"]
    # The twins must be the same district: the 1.2 twin over the 1.1 import changes nothing.
    over = run_step("import", backend, twin, url)
    changed = {name: c for name, c in over["counts"].items() if c["added"] or c["changed"] or c["deleted"]}
    assert not changed, f"the 1.2 twin differs from the converted 1.1 bundle: {changed}"
    print(f"{'backend':<11}{'bundle':<8}{'rows':>12}{'wall s':>9}{'CPU s':>9}{'rows/CPU-s':>12}")
    medians = {}
    for version in ("1.2", "1.1"):
        wall = statistics.median(r["seconds"] for r in runs[version])
        cpu = statistics.median(r["cpu_seconds"] for r in runs[version])
        medians[version] = (wall, cpu)
        print(f"{backend:<11}{version:<8}{rows:>12,}{wall:>9.2f}{cpu:>9.2f}{rows / cpu:>12,.0f}")
    print(f"{backend:<11}1.1/1.2: wall {medians['1.1'][0] / medians['1.2'][0]:.3f}, "
          f"CPU {medians['1.1'][1] / medians['1.2'][1]:.3f} (target <= 1.15; median of {repeat})")


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
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
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
    parser.add_argument("--v1p1", action="store_true",
                        help="compare importing the district as OneRoster 1.1 with its 1.2 twin")
    parser.add_argument("--repeat", type=int, default=3, help="imports of each bundle with --v1p1")
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
    if args.v1p1:
        for backend in backends:
            compare_v1p1(backend, bundle, args.workdir, args.postgresql_url, args.repeat)
        return
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
