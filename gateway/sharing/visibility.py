"""The contract between the channels that disclose roster data and the sharing policy.

A channel (the OneRoster REST service, CSV exports, LTI claims, NRPS) never decides on its own
what an app may see. It asks a :class:`Visibility` for the request's app and district, and:

* ANDs :meth:`Visibility.where` into every query, so a hidden record cannot be read, counted,
  filtered or sorted into view, and an ``OR`` in a client's filter can never widen access;
* offers, accepts in ``fields=``/``filter``/``sort`` and serializes only the fields
  :meth:`Visibility.fields` allows (a withheld field behaves exactly like an unknown one);
* maps identifiers it receives (path parameters, filter values on sourcedIds) through
  :meth:`Visibility.resolve_id`, and passes every record it is about to send through
  :meth:`Visibility.present` (masking and pseudonymization happen there, references included),
  so an app sees the same ids on every endpoint and channel;
* reports what left through :meth:`Visibility.disclosed` (the ledger).

:class:`Unrestricted` is the identity: what an app with a share-everything policy sees.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Mapping, Protocol

from sqlalchemy import Table
from sqlalchemy.sql.elements import ColumnElement

from gateway.store.rostering import Driver


class Visibility(Protocol):
    """What one app may see of one district's roster."""

    cache_identity: Hashable
    """Names this visibility's predicates (:meth:`where`, :meth:`driver`) and presentation in
    the page cache's keys: any hashable that changes whenever one of them would (an app's policy
    version), never shared by two visibilities that differ. Mandatory: the read path computes its
    cache keys from it up front instead of compiling predicates."""

    def refusal(self) -> str | None:
        """Why the app may see nothing of the district right now (e.g. its contract is not in
        force, :mod:`gateway.sharing.contract`), else None. Channels that act beyond reading
        rows (issuing a launch, listing a tool) refuse with this reason; for reads, ``where``
        already hides everything."""

    def preferred_names(self) -> bool:
        """Whether LTI claims and NRPS carry a person's preferred names where the SIS has them
        (and :meth:`fields` lets them leave), rather than the legal ones."""

    def shares_launch_platform(self) -> bool:
        """Whether a launch an LMS brokered names that LMS to the app (off by default)."""

    def where(self, entity: str, table: Table) -> ColumnElement[bool] | None:
        """A predicate over ``table`` (the store table of OneRoster ``entity``: "org", "user",
        "class"...) that selects only the rows the app may see; None when nothing is hidden."""

    def driver(self, entity: str, table: Table) -> Driver | None:
        """A list of the visible rows of ``entity`` to read unfiltered pages through, when the
        visibility keeps one (see :class:`gateway.store.rostering.Driver`); None otherwise."""

    def fields(self, entity: str) -> frozenset[str] | None:
        """The REST field names of ``entity`` that may leave (None: all of them)."""

    def filterable(self, entity: str) -> frozenset[str] | None:
        """The fields a client may filter or sort on (None: all scalar fields). A masked or
        pseudonymized field is not filterable, or the filter would reveal the clear value."""

    def resolve_id(self, entity: str, external_id: str) -> str | None:
        """The stored sourcedId behind an id the app sent (None if it names nothing it may see)."""

    def present(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        """The record as this app may receive it (masked, pseudonymized, references included)."""

    def disclosed(self, channel: str, endpoint: str, entity: str,
                  records: Iterable[Mapping[str, Any]], stored_ids: Iterable[str]) -> None:
        """Note that ``records`` (as sent) about the stored ``stored_ids`` left through ``channel``."""

    # Optional, for channels that send ready renderings (gateway.oneroster.rendering); a
    # visibility without them has its records decoded and passed through present/disclosed:
    #   verbatim(entity) -> bool: present() leaves every record of entity as it is;
    #   disclosed_fields(channel, endpoint, entity, names, record_count, users): disclosed()
    #   given the top-level field names that left and the people's stored ids.


class Unrestricted:
    """The identity visibility: every record and field, ids unchanged, nothing recorded."""

    cache_identity: Hashable = ("unrestricted",)

    def refusal(self) -> str | None:
        """Never closed."""
        return None

    def preferred_names(self) -> bool:
        """Preferred names, as people know each other."""
        return True

    def shares_launch_platform(self) -> bool:
        """Not an app: no launch to tell."""
        return False

    def where(self, entity: str, table: Table) -> ColumnElement[bool] | None:
        """Nothing hidden."""
        return None

    def driver(self, entity: str, table: Table) -> Driver | None:
        """No list: every row is visible."""
        return None

    def fields(self, entity: str) -> frozenset[str] | None:
        """Every field."""
        return None

    def filterable(self, entity: str) -> frozenset[str] | None:
        """Every scalar field."""
        return None

    def resolve_id(self, entity: str, external_id: str) -> str | None:
        """Ids are the stored ones."""
        return external_id

    def present(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        """Records leave as they are."""
        return record

    def disclosed(self, channel: str, endpoint: str, entity: str,
                  records: Iterable[Mapping[str, Any]], stored_ids: Iterable[str]) -> None:
        """Nothing is recorded."""

    def verbatim(self, entity: str) -> bool:
        """Records leave as rendered."""
        return True

    def disclosed_fields(self, channel: str, endpoint: str, entity: str, names: Iterable[str],
                         record_count: int, users: Iterable[str]) -> None:
        """Nothing is recorded."""
