"""Twilio Media Streams: the sans-I/O dialect (both directions) and the caller-side client."""
