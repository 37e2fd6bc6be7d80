"""A scripted call (4 turns, a tool call, a barge-in) as core events.

Used by the widget tests, by ``voiceprobe demo --screenshot`` and for trying the UI with no
core at all. The figures are fixed, so tests can check what the views show.
"""

from __future__ import annotations

from collections.abc import Sequence

from app import events as E
from app.metrics.timeline import Timeline

MS = 1_000_000

DEFAULT_USER = (
    "Hi, I'd like to book a trip to Lisbon next week.",
    "What's the weather like there right now?",
    "Great, and can you also check flights from Paris on",
    "Sorry — from Paris on Tuesday morning, please.",
)
DEFAULT_AGENT = (
    "Happy to help! Which dates are you thinking of, and where are you flying from?",
    "It's 21 degrees and sunny in Lisbon right now.",
    "Sure, let me look at morning flights from Paris. There are several options on",
    "There is a 7:05 flight from Orly arriving at 8:40, and a 9:30 from Charles de Gaulle.",
)
#: voice-to-voice per turn (ms) in the script, for tests.
V2V_MS = (820.0, 1460.0, 760.0, 905.0)


class _Script:
    def __init__(self, t0_ns: int) -> None:
        self.t0 = t0_ns
        self.out: list[E.Event] = []

    def at(self, ms: float) -> int:
        return self.t0 + int(ms * MS)

    def add(self, ev: E.Event) -> None:
        self.out.append(ev)


def demo_events(
    t0_ns: int = 1_000_000_000_000,
    user_texts: Sequence[str] = DEFAULT_USER,
    agent_texts: Sequence[str] = DEFAULT_AGENT,
) -> list[E.Event]:
    """Return the scripted call's events in order, stamped from ``t0_ns``.

    Turn 2 (index 1) calls ``get_weather``; the caller barges in on turn 3 (index 2).
    """
    s = _Script(t0_ns)
    s.add(
        E.CallStarted(t_ns=s.at(0), session_id="demo-session", provider="sim", model="gpt-realtime")
    )
    s.add(E.ConnectionState(t_ns=s.at(5), provider="openai", state="connecting"))
    s.add(E.ConnectionState(t_ns=s.at(60), provider="openai", state="connected"))
    s.add(E.ClientMessageSent(t_ns=s.at(61), type="session.update"))
    s.add(E.SessionConfigured(t_ns=s.at(110), provider="openai", session_id="sess_demo"))
    start = 1000.0
    carried = False  # the caller's barge-in speech is the next turn's speech
    for k in range(4):
        user, agent = user_texts[k], agent_texts[k]
        uid, rid, aid = f"item_u{k}", f"resp_{k}", f"item_a{k}"
        speak = 1400.0 + 300 * k
        stop = start + speak
        eot = 380.0 if k != 1 else 420.0
        if not carried:
            s.add(E.LocalSpeechStarted(t_ns=s.at(start), sample=int(start * 16)))
        s.add(E.ServerSpeechStarted(t_ns=s.at(start + 140), item_id=uid, audio_start_ms=int(start)))
        s.add(E.LocalSpeechStopped(t_ns=s.at(stop), sample=int(stop * 16)))
        s.add(E.ServerSpeechStopped(t_ns=s.at(stop + eot), item_id=uid, audio_end_ms=int(stop)))
        s.add(E.InputCommitted(t_ns=s.at(stop + eot + 2), item_id=uid))
        resp_at = stop + eot + 35
        s.add(E.ResponseStarted(t_ns=s.at(resp_at), response_id=rid))
        words = user.split()
        for i in range(0, len(words), 4):
            s.add(
                E.UserTranscript(
                    t_ns=s.at(resp_at + 10 + i),
                    item_id=uid,
                    text=" ".join(words[i : i + 4]) + " ",
                    final=False,
                )
            )
        s.add(E.UserTranscript(t_ns=s.at(resp_at + 60), item_id=uid, text=user, final=True))
        audio_rid = rid
        if k == 1:
            args = '{"city": "Lisbon"}'
            s.add(
                E.ToolCallRequested(
                    t_ns=s.at(resp_at + 300),
                    call_id="call_1",
                    name="get_weather",
                    arguments=args,
                    response_id=rid,
                )
            )
            s.add(E.ResponseFinished(t_ns=s.at(resp_at + 302), response_id=rid))
            done = resp_at + 300 + 250
            s.add(
                E.ToolCallFinished(
                    t_ns=s.at(done),
                    call_id="call_1",
                    name="get_weather",
                    arguments=args,
                    status="ok",
                    output='{"temperature_c": 21, "sky": "sunny"}',
                    ms=250.0,
                )
            )
            s.add(E.ClientMessageSent(t_ns=s.at(done + 1), type="conversation.item.create"))
            s.add(E.ClientMessageSent(t_ns=s.at(done + 2), type="response.create"))
            audio_rid = f"resp_{k}b"
            s.add(E.ResponseStarted(t_ns=s.at(done + 40), response_id=audio_rid))
            first_audio = done + 40 + 210
        else:
            first_audio = resp_at + 300 + 30 * k
        played = stop + V2V_MS[k]
        chunk_ms = 100
        talk_ms = 2400.0 + 200 * k
        n_chunks = int(talk_ms // chunk_ms)
        for c in range(n_chunks):
            s.add(
                E.AgentAudio(
                    t_ns=s.at(first_audio + c * 40),
                    response_id=audio_rid,
                    item_id=aid,
                    pcm=bytes(4800),
                    sample_rate=24000,
                )
            )
            if c == 0:
                s.add(E.PlaybackStarted(t_ns=s.at(played), item_id=aid, response_id=audio_rid))
        words = agent.split()
        for i in range(0, len(words), 3):
            s.add(
                E.AgentTranscript(
                    t_ns=s.at(first_audio + 20 + i * 30),
                    response_id=audio_rid,
                    item_id=aid,
                    text=" ".join(words[i : i + 3]) + " ",
                    final=False,
                )
            )
        interrupted = k == 2
        if interrupted:
            cut = played + 1200
            s.add(E.LocalSpeechStarted(t_ns=s.at(cut - 60), sample=int((cut - 60) * 16)))
            s.add(
                E.BargeIn(
                    t_ns=s.at(cut),
                    item_id=aid,
                    played_ms=1200,
                    received_ms=int(talk_ms),
                    truncate_ms=1200,
                )
            )
            s.add(
                E.PlaybackStopped(
                    t_ns=s.at(cut),
                    item_id=aid,
                    played_samples=1200 * 24,
                    sample_rate=24000,
                    interrupted=True,
                )
            )
            s.add(E.ClientMessageSent(t_ns=s.at(cut + 1), type="conversation.item.truncate"))
            s.add(E.ItemTruncated(t_ns=s.at(cut + 45), item_id=aid, audio_end_ms=1200))
            s.add(
                E.AgentTranscript(
                    t_ns=s.at(cut + 50), response_id=audio_rid, item_id=aid, text=agent, final=True
                )
            )
            s.add(
                E.ResponseFinished(
                    t_ns=s.at(cut + 50),
                    response_id=audio_rid,
                    status="cancelled",
                    reason="turn_detected",
                )
            )
            end_play = cut
        else:
            end_play = played + talk_ms
            s.add(
                E.AgentTranscript(
                    t_ns=s.at(first_audio + 400),
                    response_id=audio_rid,
                    item_id=aid,
                    text=agent,
                    final=True,
                )
            )
            s.add(E.ResponseFinished(t_ns=s.at(first_audio + 420), response_id=audio_rid))
            s.add(
                E.PlaybackStopped(
                    t_ns=s.at(end_play),
                    item_id=aid,
                    played_samples=int(talk_ms * 24),
                    sample_rate=24000,
                )
            )
        carried = interrupted
        start = end_play + 400 if not interrupted else cut - 60
    s.add(E.Notice(t_ns=s.at(start + 100), level="info", message="Caller hung up"))
    s.out.sort(key=lambda ev: ev.t_ns)  # stable: same-stamp events keep script order
    # The turns come from the real timeline, as in a call: each TurnCompleted right after
    # the event that completed it, and the rest when the call ends.
    timeline = Timeline()
    out: list[E.Event] = []
    for ev in s.out:
        out.append(ev)
        out.extend(timeline.feed(ev))
    end = s.at(start + 120)
    out.extend(timeline.close(end))
    out.append(E.CallEnded(t_ns=end, session_id="demo-session", reason="hangup"))
    return out
