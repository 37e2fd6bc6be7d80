"""Probes for language and accent coverage: rendering, audio conditions and scoring.

Everything here is synchronous and pure apart from the espeak-ng/sox subprocesses and the
on-disk render cache. The contracts are written in ``docs/probes.md``.
"""
