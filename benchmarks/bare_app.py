"""The baseline for the rostering benchmark: a bare Flask endpoint returning a fixed JSON page.

It serves, byte for byte, the body written to $BARE_PAGE_FILE (the benchmark stores the
gateway's own first /users page there), so the comparison is like for like.
"""
import os

from flask import Flask, Response

app = Flask(__name__)
with open(os.environ["BARE_PAGE_FILE"], "rb") as handle:
    PAGE = handle.read()


@app.get("/page")
def page():
    """The fixed page."""
    return Response(PAGE, mimetype="application/json")
