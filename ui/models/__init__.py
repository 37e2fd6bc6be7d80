"""Pure Qt models of a call, fed by :mod:`app.events` events (no widgets, no core)."""

from ui.models.call_view import CallViewModel
from ui.models.event_log import EventLogModel
from ui.models.tool_calls import ToolCallsModel
from ui.models.transcript import TranscriptModel
from ui.models.turns import TurnsModel
from ui.models.vad_lane import VadLaneModel

__all__ = [
    "CallViewModel",
    "EventLogModel",
    "ToolCallsModel",
    "TranscriptModel",
    "TurnsModel",
    "VadLaneModel",
]
