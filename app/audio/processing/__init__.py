"""Helpers around the mic-path processor (app/audio/aec.py): a simulated room for
benchmarks and tests, and the echo figures measured on recordings."""
