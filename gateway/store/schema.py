"""The complete schema: imports every module that defines tables, so migrations and tests see all."""
from gateway.store import accounts  # noqa: F401  (registers the portal session and throttle tables)
from gateway.store import admins  # noqa: F401  (registers the admin console tables)
from gateway.store import apps  # noqa: F401  (registers the app/client tables)
from gateway.store import events  # noqa: F401  (registers the change feed and webhook tables)
from gateway.store import gradebook  # noqa: F401  (registers the gradebook tables)
from gateway.store import lti  # noqa: F401  (registers the LTI platform tables)
from gateway.store import lms  # noqa: F401  (registers the LTI tool role's tables)
from gateway.store import resources  # noqa: F401  (registers the resources service's tables)
from gateway.store import sharing  # noqa: F401  (registers the policy and ledger tables)
from gateway.store import sources  # noqa: F401  (registers the SIS source table)
from gateway.store.models import Base

metadata = Base.metadata
