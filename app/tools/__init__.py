"""Tool calls made by the agent (DESIGN.md "Tools")."""

from app.tools.runner import ToolResult, ToolRunner

__all__ = ["ToolResult", "ToolRunner"]
