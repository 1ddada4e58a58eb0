"""``gateway ledger``: read, verify, fold and prune the disclosure ledger."""
from __future__ import annotations

import datetime as dt
import json

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.backup import check_heads, load_heads, read_chain_heads
from gateway.cli.context import echo_json, json_option, store_session
from gateway.errors import UsageError
from gateway.sharing import ledger
from gateway.store.models import District, utcnow


@click.group("ledger")
def ledger_group() -> None:
    """The record of what left for which app (FERPA record of disclosures)."""


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


def _district_label(session, district_id: int) -> str:
    district = session.get(District, district_id)
    return district.sourced_id if district is not None else f"#{district_id}"


@ledger_group.command("student")
@click.argument("sourced_id")
@click.option("--district", metavar="SOURCEDID", help="The district (default: the only one).")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              help="How many of the newest entries to list in full.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def student_command(sourced_id: str, district: str | None, limit: int, as_json: bool) -> None:
    """Which apps received the records of the user SOURCED_ID, which fields, and when (per app
    and per field plan: how many times, first and last)."""
    with store_session() as session:
        district_id = ledger.find_district_id(session, district)
        found = ledger.student_disclosures(session, district_id, sourced_id, limit=limit)
        # A person the SIS no longer sends may still have disclosures: only someone with
        # neither a record nor a disclosure is unknown.
        if not found.total and not ledger.person_exists(session, district_id, sourced_id):
            raise UsageError(f"no person with sourcedId {sourced_id!r} in district "
                             f"{_district_label(session, district_id)}")
    if as_json:
        click.echo(json.dumps({
            "user": found.user_sourced_id, "total": found.total,
            "apps": [{"app_id": a.app_id, "name": a.app_name, "disclosures": a.count,
                      "first": _iso(a.first), "last": _iso(a.last), "fields": a.fields,
                      "plans": [{"entity": p.entity, "fields": list(p.fields),
                                 "disclosures": p.count, "first": _iso(p.first),
                                 "last": _iso(p.last)} for p in a.plans]}
                     for a in found.apps],
            "entries": [{"seq": e.seq, "app_id": e.app_id, "channel": e.channel,
                         "endpoint": e.endpoint, "at": _iso(e.disclosed_at), "entity": e.entity,
                         "fields": list(e.fields)} for e in found.entries]}))
        return
    if not found.total:
        click.echo(f"no disclosures of {sourced_id}'s records are recorded")
        return
    click.echo(f"{found.total} disclosure(s) of {sourced_id}'s records, to {len(found.apps)} app(s):")
    for a in found.apps:
        click.echo(f"  app {a.app_id} ({a.app_name or 'deleted'}): {a.count} time(s), "
                   f"{_iso(a.first)} to {_iso(a.last)}")
        if len(a.plans) <= 1:
            for entity, names in a.fields.items():
                click.echo(f"    {entity}: {', '.join(names)}")
            continue
        # Several field plans: each one's fields, count and times.
        for p in a.plans:
            click.echo(f"    {p.entity}: {', '.join(p.fields)} ({p.count} time(s), "
                       f"{_iso(p.first)} to {_iso(p.last)})")
    if found.entries:
        click.echo(f"newest {len(found.entries)}:")
        for e in found.entries:
            click.echo(f"  #{e.seq} {_iso(e.disclosed_at)} app {e.app_id} {e.channel} "
                       f"{e.endpoint} {e.entity}: {', '.join(e.fields)}")


@ledger_group.command("heads")
@json_option
@with_appcontext
def heads_command(as_json: bool) -> None:
    """Print each district's chain head (last seq and hash): keep the output apart from backups
    to check a restored ledger against (`ledger verify --heads FILE`)."""
    with store_session() as session:
        heads = read_chain_heads(session)
    if as_json:
        echo_json([head.as_json() for head in heads])
        return
    for head in heads:
        click.echo(f"district {head.district}: head {head.seq} {head.hash}")


@ledger_group.command("verify")
@click.option("--district", metavar="SOURCEDID", help="Verify one district (default: all).")
@click.option("--heads", "heads_file", type=click.Path(dir_okay=False, exists=True),
              help="Also check that each chain reaches these heads (`ledger heads --json` "
                   "output kept apart, or a backup's manifest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def verify_command(district: str | None, heads_file: str | None, as_json: bool) -> None:
    """Recompute the hash chains, the seals and the spans' set hash; exit with status 1 and say
    where if one is broken."""
    with store_session() as session:
        ids = ([ledger.find_district_id(session, district)] if district
               else ledger.ledger_district_ids(session))
        results = [(_district_label(session, i), ledger.verify_ledger(session, i)) for i in ids]
        kept = load_heads(heads_file) if heads_file else []
        if district:
            kept = [head for head in kept if head.district == district]
        head_problems = check_heads(session, kept, exact=False)
    if as_json:
        click.echo(json.dumps([
            {"district": label, "ok": r.ok, "entries": r.entries, "first_seq": r.first_seq,
             "last_seq": r.last_seq, "head_seq": r.head_seq, "head_hash": r.head_hash,
             "checkpoint_seq": r.checkpoint_seq, "folded_seq": r.folded_seq,
             "seals": r.seals, "spans": r.spans, "seal_seq": r.seal_seq,
             "seal_hash": r.seal_hash, "problem_count": r.problem_count,
             "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message}
                          for p in r.problems],
             **({"kept_head_problems": [message for name, message in head_problems
                                        if name == label]} if heads_file else {})}
            for label, r in results]))
        labels = {label for label, _ in results}
        for name, message in head_problems:
            if name not in labels:
                click.echo(message, err=True)
    else:
        for label, r in results:
            since = f" since checkpoint {r.checkpoint_seq}" if r.checkpoint_seq is not None else ""
            if r.ok:
                click.echo(f"district {label}: {r.entries} entries{since}, chain intact; "
                           f"head {r.head_seq} {r.head_hash}")
                click.echo(f"  {r.spans} spans match {r.seals} seal(s), folded to entry "
                           f"{r.folded_seq}; seal head {r.seal_seq} {r.seal_hash}")
                continue
            click.echo(f"district {label}: {r.problem_count} problem(s) in {r.entries} "
                       f"entries{since}:", err=True)
            for p in r.problems:
                click.echo(f"  {p.message}", err=True)
            if r.problem_count > len(r.problems):
                click.echo(f"  ... and {r.problem_count - len(r.problems)} more", err=True)
        if heads_file and not head_problems:
            click.echo(f"every kept head in {heads_file} is in the ledger")
        for _, message in head_problems:
            click.echo(message, err=True)
    if not all(r.ok for _, r in results) or head_problems:
        raise SystemExit(1)


@ledger_group.command("fold")
@click.option("--district", metavar="SOURCEDID", help="Fold one district (default: all).")
@json_option
@with_appcontext
def fold_command(district: str | None, as_json: bool) -> None:
    """Fold pending disclosures into per-person spans, sealing each batch (appenders also fold
    as they go; this catches up, e.g. from a scheduled job)."""
    now = utcnow()
    done = []
    # Only the ledger is written: on SQLite its own file, whose lock the fold takes first.
    with store_session() as session:
        ids = ([ledger.find_district_id(session, district)] if district
               else ledger.ledger_district_ids(session))
        for district_id in ids:
            folds = ledger.fold_all(session, district_id, now=now)
            done.append((_district_label(session, district_id), folds))
    if as_json:
        echo_json([{"district": label, "entries": sum(f.entries for f in folds),
                    "people": sum(f.people for f in folds),
                    "seals": [f.seal_seq for f in folds],
                    "stopped": folds[-1].stopped if folds else None}
                   for label, folds in done])
        return
    for label, folds in done:
        entries = sum(f.entries for f in folds)
        if not entries:
            click.echo(f"district {label}: nothing pending")
            continue
        click.echo(f"district {label}: folded {entries} entries "
                   f"({sum(f.people for f in folds)} person-disclosures) under seal(s) "
                   f"{folds[0].seal_seq} to {folds[-1].seal_seq}")
        if folds[-1].stopped:
            click.echo(f"  stopped: {folds[-1].stopped} (see gateway ledger verify)", err=True)


@ledger_group.command("prune")
@click.option("--district", metavar="SOURCEDID", help="Prune one district (default: all).")
@click.option("--older-than", "days", type=click.IntRange(min=0), metavar="DAYS",
              help="Remove entries older than DAYS (default: GATEWAY_LEDGER_RETENTION_DAYS).")
@json_option
@with_appcontext
def prune_command(district: str | None, days: int | None, as_json: bool) -> None:
    """Remove entries past the retention period, keeping the chain verifiable."""
    if days is None:
        days = current_app.config.get("LEDGER_RETENTION_DAYS")
    if days is None:
        raise click.ClickException("no retention period: set GATEWAY_LEDGER_RETENTION_DAYS or "
                                   "pass --older-than DAYS")
    now = utcnow()
    cutoff = now - dt.timedelta(days=days)
    with store_session(write=True) as session:
        ids = ([ledger.find_district_id(session, district)] if district
               else ledger.ledger_district_ids(session))
        done = [(_district_label(session, i),
                 ledger.prune_ledger(session, i, before=cutoff, now=now)) for i in ids]
    if as_json:
        echo_json([{"district": label, "removed": pruning.entries,
                    "checkpoint_seq": pruning.checkpoint_seq, "cutoff": _iso(cutoff)}
                   for label, pruning in done])
        return
    for label, pruning in done:
        if pruning.entries:
            click.echo(f"district {label}: removed {pruning.entries} entries older than "
                       f"{_iso(cutoff)} (checkpoint at entry {pruning.checkpoint_seq})")
        else:
            click.echo(f"district {label}: nothing older than {_iso(cutoff)}")


def register(cli: click.Group) -> None:
    """Attach the ``ledger`` group."""
    cli.add_command(ledger_group)
