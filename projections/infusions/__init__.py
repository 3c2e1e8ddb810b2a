"""Infusion read models: episodes and their state, timelines, orders and patient locations."""
