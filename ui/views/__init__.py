"""Thin widgets bound to the models in :mod:`ui.models` (docs/architecture.md#desktop-views)."""
