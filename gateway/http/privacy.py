"""The public transparency page of a district: which apps receive student data, which fields and
how, under which contract, and how a parent asks for their child's disclosure record."""
from __future__ import annotations

from flask import Blueprint, Response, render_template

from gateway.admin.district import transparency
from gateway.database import request_session
from gateway.errors import UsageError

blueprint = Blueprint("privacy", __name__)


@blueprint.get("/districts/<district>/privacy")
def district_privacy(district: str) -> Response:
    """Every app connected to the district and the student fields it receives."""
    try:
        found, apps = transparency(request_session(), district)
    except UsageError:
        return Response(render_template("privacy_missing.html"), status=404, mimetype="text/html")
    return Response(render_template("privacy.html", district=found, apps=apps),
                    mimetype="text/html")
