"""Talk to an agent in the terminal: one line a turn on stdin, the agent's reply on stdout.

    manage.py chat --agent support [--caller +14155551000] [--show-tools]

A line "#123" sends keypad digits. The conversation is stored as a text call, like the chat page's.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from telephony.chat.session import text_session_open


class Command(BaseCommand):
    help = "Chat with an agent in the terminal (stdin/stdout, one line a turn)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--agent", required=True, help="The agent's slug.")
        parser.add_argument("--caller", default="", help="Caller ID to simulate, e.g. +14155551000.")
        parser.add_argument("--show-tools", action="store_true", help="Print each tool call and its result.")

    def handle(self, *args, agent: str, caller: str, show_tools: bool, **options) -> None:
        session = text_session_open(agent_slug=agent, caller_number=caller)
        if session is None:
            raise CommandError(f"No active agent with slug {agent!r}.")
        interactive = sys.stdin.isatty()
        reply = session.start()
        self._print(reply, show_tools)
        try:
            while not reply.action:
                if interactive:
                    self.stdout.write("you> ", ending="")
                    self.stdout.flush()
                line = sys.stdin.readline()
                if not line:
                    break
                line = line.rstrip("\n")
                if line.strip().startswith("#") and line.strip()[1:].strip():
                    reply = session.respond(dtmf=line.strip()[1:].strip())
                else:
                    reply = session.respond(text=line)
                self._print(reply, show_tools)
        except KeyboardInterrupt:
            pass
        finally:
            session.close(end_reason="caller_hangup")
        if reply.action:
            self.stdout.write(f"[call ended: {reply.action} {reply.action_reason}]".replace("  ", " "))

    def _print(self, reply, show_tools: bool) -> None:
        if show_tools:
            for call in reply.tool_calls:
                self.stdout.write(f"  [{call.name} {'ok' if call.ok else 'failed'}: {call.result}]")
        self.stdout.write(f"agent> {reply.text}")
        self.stdout.flush()
