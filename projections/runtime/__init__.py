"""Running projections: positions, batches, generations (rebuilds), status and lag."""
