"""Audio building blocks: PCM16 frames, G.711, resampling, ring buffer, VAD, playout,
WAV files and the caller-side ports (file, mic).
"""
