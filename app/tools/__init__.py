"""Tool calls made by the agent (docs/architecture.md#tools)."""

from app.tools.runner import ToolResult, ToolRunner

__all__ = ["ToolResult", "ToolRunner"]
