"""voiceprobe as a server other systems call into (``voiceprobe serve …``)."""
