"""The LTI 1.3 platform. No flask here: every function takes the session, the clock and the
settings it needs, and a :class:`~gateway.sharing.visibility.Visibility` wherever roster data
leaves.

- :mod:`~gateway.lti.platform.errors`: the errors, each with its status and body;
- :mod:`~gateway.lti.platform.registration`: tools, deployments, placements;
- :mod:`~gateway.lti.platform.dynamic`: LTI Dynamic Registration;
- :mod:`~gateway.lti.platform.portal`: portal sign-in and what a user may launch;
- :mod:`~gateway.lti.platform.messages`: the claims of a launch;
- :mod:`~gateway.lti.platform.launch`: login initiation and the authentication response;
- :mod:`~gateway.lti.platform.tokens`: service tokens (client credentials, JWT assertions);
- :mod:`~gateway.lti.platform.nrps`, :mod:`~gateway.lti.platform.ags`,
  :mod:`~gateway.lti.platform.deeplinking`: the LTI Advantage services.

It shares with the tool role, from :mod:`gateway.lti`: :mod:`~gateway.lti.vocabulary` (claim
names, scopes, media types, LIS role URIs), :mod:`~gateway.lti.keys` (the gateway's signing keys,
encrypted at rest, and its JWKS), :mod:`~gateway.lti.signed` (the other party's public keys,
fetched and cached, and the verification of the JWTs it signs: here tools' client assertions and
deep linking responses) and :mod:`~gateway.lti.replay` (single-use values: hints, nonces,
``jti``).
"""
