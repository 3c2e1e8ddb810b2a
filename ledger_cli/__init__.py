"""The composition root: the ``ledger`` console script and its subcommands.

The only place that imports ``ledger``, ``consumers`` and ``projections`` together, builds
settings from the environment and passes them in.
"""
