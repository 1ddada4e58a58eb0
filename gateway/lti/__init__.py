"""LTI 1.3 and LTI Advantage, free of the web framework.

:mod:`gateway.lti.platform` plays the platform role (the part Canvas or Moodle plays) for the
apps a district has connected: it launches users into tools, and serves tools the Names and Role
Provisioning, Assignment and Grade, Deep Linking and Dynamic Registration services. The HTTP
endpoints are in :mod:`gateway.http.lti` and the portal's pages in :mod:`gateway.http.portal`.

What either role needs lives here, beside the roles: :mod:`~gateway.lti.vocabulary` (the names
the specifications fix), :mod:`~gateway.lti.keys` (the gateway's own signing keys),
:mod:`~gateway.lti.signed` (the other party's keys, and the verification of every JWT it signs)
and :mod:`~gateway.lti.replay` (single-use values).
"""
