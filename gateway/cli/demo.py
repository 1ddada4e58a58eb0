"""``gateway demo-data``: write a demo district as a OneRoster 1.2.1 CSV bundle."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from gateway.demo import DEFAULT_SCHOOLS, DEFAULT_SEED, DEFAULT_STUDENTS, generate_demo_bundle
from gateway.cli.context import echo_json, json_option
from gateway.errors import UsageError


@click.command("demo-data")
@click.option("--out", "out_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False, dir_okay=True, writable=True, path_type=Path),
              help="Folder to write the bundle into (created if missing).")
@click.option("--schools", type=click.IntRange(min=1), default=DEFAULT_SCHOOLS, show_default=True,
              help="Number of schools (3 or more give elementary, middle and high schools).")
@click.option("--students", type=click.IntRange(min=1), default=DEFAULT_STUDENTS,
              show_default=True, help="Number of students over all schools.")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="Random seed: the same arguments always give the same files.")
@click.option("--force", is_flag=True, help="Write into DIR even if it is not empty.")
@json_option
def demo_data_command(out_dir: Path, schools: int, students: int, seed: int, force: bool,
                      as_json: bool) -> None:
    """Write a realistic demo district as a OneRoster 1.2.1 CSV bundle."""
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise click.ClickException(f"{out_dir} is not empty; choose an empty folder, or pass "
                                   "--force to replace the bundle files in it")
    try:
        # A bar only for a person watching: logs and pipes get the summary alone.
        if sys.stdout.isatty() and not as_json:
            with click.progressbar(length=students, label="Writing students") as bar:
                bundle = generate_demo_bundle(out_dir, schools=schools, students=students,
                                              seed=seed, progress=bar.update)
        else:
            bundle = generate_demo_bundle(out_dir, schools=schools, students=students, seed=seed)
    except UsageError as error:
        raise click.UsageError(error.description) from error
    if as_json:
        echo_json({"path": str(bundle.path), "rows": dict(bundle.counts),
                   "total_rows": bundle.total_rows, "schools": schools, "students": students,
                   "seed": seed})
        return
    width = max(len(name) for name in bundle.counts)
    for filename, rows in bundle.counts.items():
        click.echo(f"  {filename:<{width}}  {rows:>12,} rows")
    click.echo(f"wrote {bundle.total_rows:,} rows ({schools} schools, {students:,} students, "
               f"seed {seed}) to {bundle.path}")


def register(cli: click.Group) -> None:
    """Attach the ``demo-data`` command."""
    cli.add_command(demo_data_command)
