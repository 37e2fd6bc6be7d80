"""Gemini Live (``BidiGenerateContent``): the sans-I/O protocol and how to dial it."""

from app.providers.gemini.connection import connect_gemini, gemini_url
from app.providers.gemini.protocol import GeminiProtocol

__all__ = ["GeminiProtocol", "connect_gemini", "gemini_url"]
