"""The contract window: the days between which a district's sharing policy for an app is in force.

Outside its window a policy lets the app see nothing, on every channel. This module is the one
place that decides it: the OAuth token endpoint and bearer check, the LTI service tokens, launches,
NRPS, AGS, deep linking and the portal's listing all ask :func:`contract_refusal` (directly, or
through the :class:`~gateway.sharing.visibility.Visibility` that
:func:`gateway.sharing.visibility_for` builds), so a channel added later inherits it.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.store.sharing import SharingPolicy

ContractWindow = tuple["dt.date | None", "dt.date | None"]
"""``(start, end)``, both days included; either may be None (open-ended)."""


def contract_refusal(start: dt.date | None, end: dt.date | None, today: dt.date, *,
                     token_endpoint: bool = False) -> str | None:
    """Why a policy whose window is ``start``..``end`` is not in force on ``today``, else None;
    ``token_endpoint``: worded as a token endpoint's refusal to issue one."""
    if start is not None and today < start:
        suffix = "; no access tokens are issued before then." if token_endpoint else "."
        return f"The district's contract with this app starts on {start.isoformat()}{suffix}"
    if end is not None and today > end:
        suffix = "; no access tokens are issued after it." if token_endpoint else "."
        return f"The district's contract with this app ended on {end.isoformat()}{suffix}"
    return None


def contract_window(session: Session, app_id: int, district_id: int) -> ContractWindow | None:
    """The contract window of the district's sharing policy for the app, or None when there is
    no policy or it sets no window."""
    row = session.execute(select(SharingPolicy.contract_start, SharingPolicy.contract_end).where(
        SharingPolicy.app_id == app_id, SharingPolicy.district_id == district_id)).one_or_none()
    if row is None or (row.contract_start is None and row.contract_end is None):
        return None
    return row.contract_start, row.contract_end


def app_contract_refusal(session: Session, app_id: int, district_id: int, today: dt.date, *,
                         token_endpoint: bool = False) -> str | None:
    """Why the app's contract with the district is not in force on ``today``, else None (also
    None without a policy: then the policy, not the contract, is what shares nothing)."""
    window = contract_window(session, app_id, district_id)
    return None if window is None else contract_refusal(*window, today,
                                                        token_endpoint=token_endpoint)
