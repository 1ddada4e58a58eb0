"""The landing page."""
from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select

from gateway.database import request_session
from gateway.store.models import District

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
def index():
    """A plain page saying what this gateway serves and which districts it holds."""
    session = request_session()
    districts = session.execute(select(District).order_by(District.sourced_id)).scalars().all()
    return render_template("index.html", districts=districts)
