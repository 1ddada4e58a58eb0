"""The admin console's services (no web framework here): staff accounts and roles, their
sessions, the audit log, and the views of the district the console shows."""
