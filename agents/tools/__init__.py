"""One registry of CRM tools; see base.py for the contract. The tools are thin adapters over the
apps' selectors and services, one module per topic; importing them registers them."""

from agents.tools import (  # noqa: F401  (registers the tools)
    account,
    appointments,
    call_control,
    identification,
    information,
    knowledge,
    orders,
    tickets,
)
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
