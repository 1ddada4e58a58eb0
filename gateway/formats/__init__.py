"""The export formats an import reads, each turned into feeds of OneRoster 1.2 rows
(:mod:`gateway.oneroster.csv.feeds`) that go through the same validation and atomic import.

A bundle's format is recognized from the files it holds, or named (``gateway import --format``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gateway.formats import oneroster
from gateway.oneroster.csv.bundle import Bundle, BundleError
from gateway.oneroster.csv.feeds import FeedContext, FileFeed


@dataclass(frozen=True)
class Format:
    """One export format: its name for ``--format``, what it is, how to recognize it from the
    bundle's file names, and how to plan its feeds."""

    name: str
    title: str
    recognizes: Callable[[set[str]], bool]
    plan: Callable[[Bundle, FeedContext], tuple[str, list[FileFeed]]]


def _plan_oneroster(bundle: Bundle, context: FeedContext) -> tuple[str, list[FileFeed]]:
    manifest = oneroster.declares_oneroster(bundle.names())
    if manifest is None:
        raise BundleError(f"{bundle.path}: no manifest.csv (a OneRoster CSV bundle starts with its manifest)")
    return oneroster.plan(bundle, manifest, context)


FORMATS: dict[str, Format] = {
    "oneroster": Format("oneroster", "OneRoster 1.1 or 1.2 CSV (manifest.csv)",
                        lambda names: oneroster.declares_oneroster(names) is not None, _plan_oneroster),
}


def register(fmt: Format) -> None:
    """Add an export format (recognized after those registered before it)."""
    FORMATS[fmt.name] = fmt


@dataclass
class Plan:
    """What an import reads: the format's label (``OneRoster 1.1 CSV``...) and its feeds."""

    format: str
    feeds: list[FileFeed]


def plan_bundle(bundle: Bundle, format_name: str | None, context: FeedContext) -> Plan:
    """Recognize (or take) the bundle's format and plan its feeds. Raises :class:`BundleError`
    when no format matches, naming what each format expects."""
    if format_name is not None:
        fmt = FORMATS.get(format_name)
        if fmt is None:
            raise BundleError(f"unknown format {format_name!r}: one of {', '.join(FORMATS)}")
    else:
        names = bundle.names()
        matching = [f for f in FORMATS.values() if f.recognizes(names)]
        if not matching:
            others = "; ".join(f.title for f in FORMATS.values() if f.name != "oneroster")
            raise BundleError(f"{bundle.path}: no manifest.csv (a OneRoster CSV bundle starts with its "
                              f"manifest), and not another export format the gateway reads ({others})")
        fmt = matching[0]
    label, feeds = fmt.plan(bundle, context)
    return Plan(label, feeds)


# The other export formats, registered once Format and register exist (hence at the end), and so
# recognized after OneRoster: a bundle with a manifest is OneRoster whatever else it holds.
from gateway.formats import clever, sds  # noqa: E402

register(Format("sds", sds.TITLE, sds.recognizes, sds.plan))
register(Format("clever", clever.TITLE, clever.recognizes, clever.plan))
