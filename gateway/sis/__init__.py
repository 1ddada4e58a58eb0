"""Pulling a district's rosters from a SIS's OneRoster 1.2 REST service, no flask.

- :mod:`~gateway.sis.client`: the HTTP client (OAuth 2.0 client credentials, paging) and the
  errors a source can answer with;
- :mod:`~gateway.sis.bundle`: REST records written as a OneRoster 1.2.1 CSV bundle, so a pull is
  validated and imported exactly as a file is;
- :mod:`~gateway.sis.secrets`: the sources' client secrets, encrypted at rest;
- :mod:`~gateway.sis.pull`: the service the ``gateway sources`` commands call.
"""
