"""OpenAI Realtime (GA): the sans-I/O protocol and how to dial it."""

from app.providers.openai.connection import connect_openai, openai_headers, openai_url
from app.providers.openai.protocol import OpenAIProtocol

__all__ = ["OpenAIProtocol", "connect_openai", "openai_headers", "openai_url"]
