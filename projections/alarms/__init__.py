"""Alarm lifecycles per pump (PCD-04 style): raised, silenced, acknowledged, cleared."""
