"""The aggregator: update validation, the append-only run store, and the round loop."""
