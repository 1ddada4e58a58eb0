"""The landing page and the health check."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from sqlalchemy import func, select

from gateway.database import request_session
from gateway.store.models import District

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
def index():
    """A plain page saying what this gateway serves and which districts it holds."""
    session = request_session()
    districts = session.execute(select(District).order_by(District.sourced_id)).scalars().all()
    return render_template("index.html", districts=districts)


@blueprint.get("/healthz")
def healthz():
    """Liveness and database reachability, for load balancers and the quickstart."""
    session = request_session()
    session.execute(select(func.count()).select_from(District)).scalar_one()
    return jsonify(status="ok")
