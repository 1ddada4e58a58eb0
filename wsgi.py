"""WSGI entry point: the only module-level application (``gunicorn wsgi:app``)."""
from gateway import create_app

app = create_app()
