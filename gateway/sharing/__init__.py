"""District sharing policies and the disclosure ledger. No flask here.

Every channel (REST, CSV export, LTI claims, NRPS) asks one :class:`~gateway.sharing.visibility.Visibility`
what an app may see; see that module for the contract. :func:`visibility_for` builds the one for a
request: the app's :class:`PolicyVisibility` in the district, writing the ledger in the request's
session.

- :mod:`~gateway.sharing.policy`: policy documents, their JSON schema and what they mean;
- :mod:`~gateway.sharing.scope`: a policy's row scope as SQL predicates;
- :mod:`~gateway.sharing.snapshots`: each restricted policy's scope, materialized per data version;
- :mod:`~gateway.sharing.pseudonyms`: per-app reversible pseudonyms (AES-SIV);
- :mod:`~gateway.sharing.enforcement`: :class:`PolicyVisibility`;
- :mod:`~gateway.sharing.ledger`: the hash-chained disclosure ledger;
- :mod:`~gateway.sharing.service`: setting, previewing and describing policies.
"""
from gateway.sharing.enforcement import PolicyCache, PolicyVisibility, visibility_for
from gateway.sharing.ledger import LedgerWriter, append_noted
from gateway.sharing.policy import Policy, PolicyError, parse_policy
from gateway.sharing.pseudonyms import Pseudonymizer
from gateway.sharing.visibility import Unrestricted, Visibility

__all__ = ["LedgerWriter", "append_noted", "Policy", "PolicyCache", "PolicyError", "PolicyVisibility",
           "Pseudonymizer", "Unrestricted", "Visibility", "parse_policy", "visibility_for"]
