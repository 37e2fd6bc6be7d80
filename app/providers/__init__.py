"""Realtime speech-to-speech providers: one folder per vendor, each a sans-I/O
``protocol.py`` and a thin ``connection.py``.
"""
