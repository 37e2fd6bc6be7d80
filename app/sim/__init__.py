"""The local realtime simulator: a scripted agent behind a real WebSocket server.

``scenario`` loads the YAML script and ``tts`` makes the agent's voice. The pure parts:
``audio_input`` (the listening side: VAD on audio time), ``script`` (the script state
machine: fed events with timestamps, returns actions), ``faults`` (the fault plan) and
``response`` (response plans and per-run state). ``engine`` is the thin async runner that
carries out the script's actions on one connection (``playout`` paces a response;
``waits`` sleeps on the injected clock), and a dialect (``dialect``: the hooks) speaks a
wire protocol for it: ``openai_dialect`` (with ``openai_session``) the OpenAI Realtime GA
protocol, ``gemini_dialect`` (with ``gemini_setup``) Gemini Live. ``server`` serves it on
loopback and ``truth`` records what the simulator really did and when.
"""
