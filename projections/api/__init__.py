"""The auditor query API: read-only FastAPI over the projections (``ledger serve``).

``create_app(settings)`` builds the app; see ``app.py`` for its lifecycle, ``security.py``
for authentication, roles and the audit hook, ``deid.py`` for pseudonymisation, and
docs/api.md for the routes and what each role sees.
"""

from projections.api.app import create_app

__all__ = ["create_app"]
