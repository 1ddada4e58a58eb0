"""The complete schema: imports every module that defines tables, so migrations and tests see all."""
from gateway.store import apps  # noqa: F401  (registers the app/client tables)
from gateway.store.models import Base

metadata = Base.metadata
