"""Moved to :mod:`gateway.lti.keys` (both LTI roles sign with the gateway's keys). Kept only for
``benchmarks/lti_bench.py``, which imports ``public_jwk`` from here and is outside this change:
delete this module once it imports from :mod:`gateway.lti.keys`."""
from gateway.lti.keys import public_jwk

__all__ = ["public_jwk"]
