"""District sharing policies and the disclosure ledger. No flask here.

Every channel (REST, CSV export, LTI claims, NRPS) asks one :class:`~gateway.sharing.visibility.Visibility`
what an app may see; see that module for the contract.
"""
