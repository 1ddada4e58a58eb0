"""The change feed and signed webhooks (issue 18). No flask here.

- :mod:`~gateway.events.feed`: what an app may see of its district's events (``GET /events``),
  pruning;
- :mod:`~gateway.events.webhooks`: webhook registrations, signing, delivery with backoff;
- :mod:`~gateway.events.jobs`: the ``webhooks`` job kind (deliveries on the RQ queue).

Events are written where changes happen: an import's merge (:mod:`gateway.oneroster.csv.importer`),
a gradebook write (:mod:`gateway.gradebook.service`, :mod:`gateway.lti.platform.ags`),
the scope snapshots an import rebuilds (:mod:`gateway.sharing.snapshots`) and a policy change
(:func:`gateway.sharing.service.set_policy`), into the tables of :mod:`gateway.store.events`.
"""
