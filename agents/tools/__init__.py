"""One registry of CRM tools; see base.py for the contract and crm.py for the tools."""

from agents.tools import crm  # noqa: F401  (registers the tools)
from agents.tools.base import (
    REGISTRY,
    Tool,
    ToolError,
    identity,
    tool,
    tool_run,
    tools_for_agent,
)

__all__ = ["REGISTRY", "Tool", "ToolError", "identity", "tool", "tool_run", "tools_for_agent"]
