"""Errors of the token endpoint that authlib does not define."""
from __future__ import annotations

from authlib.oauth2.rfc6749.errors import OAuth2Error


class TooManyFailedAttempts(OAuth2Error):
    """Too many failed authentications of this client_id: refused, a correct secret too, for
    ``retry_after`` seconds. RFC 6585 §4's 429 with an RFC 6749 §5.2 body; the error code is
    RFC 6749 §4.1.2.1's ``temporarily_unavailable`` ("try again later"), since §5.2 has none for
    throttling and ``invalid_client`` would tell a client with the right secret it was wrong."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(description=f"Too many failed authentications of this client; try "
                                     f"again in {retry_after} seconds.")
        self.retry_after = retry_after

    def get_headers(self):
        """The JSON and no-store headers, and Retry-After (RFC 9110 §10.2.3)."""
        return super().get_headers() + [("Retry-After", str(self.retry_after))]
