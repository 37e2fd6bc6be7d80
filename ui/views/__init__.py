"""Thin widgets bound to the models in :mod:`ui.models` (STYLE.md, "Thin views")."""
