"""The local realtime simulator: a scripted agent behind a real WebSocket server.

``scenario`` loads the YAML script, ``tts`` makes the agent's voice, ``engine`` plays a
scenario against one connection (VAD on audio time, timing, faults, ground truth) and
``openai_dialect`` speaks the OpenAI Realtime GA wire protocol for it; ``server`` serves it
on loopback and ``truth`` records what the simulator really did and when.
"""
