"""The AGI protocol as FastAGI speaks it over TCP (Asterisk's res_agi.c), for one connection.

Asterisk connects and sends its environment, one `agi_<name>: <value>` line each (the first is
`agi_network: yes`), ending with a blank line. Then we send one command a line and read its reply:

    200 result=1 (value) endpos=1234                      ran; "(value)" and attributes optional
    510 Invalid or unknown command
    511 Command Not Permitted on a dead channel
    520 Invalid command syntax.  Proper usage not available.
    520-Invalid command syntax.  Proper usage follows:    usage lines, then
    520 End of proper usage.

When the caller hangs up, Asterisk writes `HANGUP` on its own, before the next reply: it is noted
(`hung_up`) and never taken for a reply, so later replies stay paired with their commands. The
channel is dead from then on: GET/SET VARIABLE still answer 200, most other commands 511.

Every read has a deadline; whatever breaks the protocol raises AgiError, which ends the
connection (the server's caller closes it) and never the server.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

# Asterisk sends about 25 lines of environment plus the AGI() arguments.
MAX_ENV_LINES = 128
# A 520 usage text is a few dozen lines; more is not Asterisk.
MAX_USAGE_LINES = 200

_ENV_NAME = re.compile(r"agi_[a-z0-9_]{1,64}")
_REPLY = re.compile(r"(?P<code>\d{3})(?P<sep>[ -])(?P<rest>.*)")
# "result=1", "result=1 (value)", "result=0 (timeout) endpos=1234"; the value may hold spaces
# and parentheses, so the attributes are only what follows its last ") ".
_RESULT = re.compile(r"result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?P<attrs>(?: [A-Za-z_]+=\S*)*)")
# A variable or a dialplan function: VOICECRM_ROUTE, CALLERID(num), CHANNEL(peerip).
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}(?:\([A-Za-z0-9_,.-]{0,80}\))?")


class AgiError(Exception):
    """The connection cannot go on: a protocol violation, a timeout, Asterisk gone."""


class AgiClosed(AgiError):
    """Asterisk closed the connection (the script ended on its side, or the channel is gone)."""


class AgiCommandError(AgiError):
    """Asterisk refused a command: 510 (unknown), 511 (not on a dead channel), 520 (bad syntax)."""

    def __init__(self, command: str, reply: AgiReply) -> None:
        super().__init__(f"{' '.join(command.split(' ', 2)[:2])} got {reply.code} {reply.text}")
        self.code, self.reply = reply.code, reply


@dataclass(frozen=True)
class AgiReply:
    code: int
    text: str  # the first line after the code
    result: str = ""  # 200 only: what follows "result="
    data: str | None = None  # 200 only: the text in parentheses, if any
    attributes: dict[str, str] = field(default_factory=dict)  # 200 only: endpos=…
    usage: str = ""  # 520 only: the usage block between its first and last line


def parse_reply_line(line: str) -> AgiReply:
    """One single-line reply (a 520 usage block is read by AgiSession); AgiError if it is none."""
    match = _REPLY.fullmatch(line)
    if match is None:
        raise AgiError(f"not an AGI reply: {line[:80]!r}")
    code, rest = int(match["code"]), match["rest"]
    if code != 200:
        return AgiReply(code=code, text=rest)
    result = _RESULT.fullmatch(rest)
    if result is None:
        raise AgiError(f"not a 200 reply: {line[:80]!r}")
    attributes = dict(pair.split("=", 1) for pair in result["attrs"].split())
    return AgiReply(code=200, text=rest, result=result["result"], data=result["data"], attributes=attributes)


def agi_quote(value: str) -> str:
    """One command argument as Asterisk's parser reads it: in double quotes, with backslash
    escapes, so spaces, quotes and commas stay inside the value."""
    if any(ch in value for ch in "\r\n\0"):
        raise ValueError("an AGI argument cannot hold a line break")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiSession:
    """One FastAGI connection: the environment Asterisk sent, and commands with their replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, timeout: float) -> None:
        self._reader, self._writer = reader, writer
        self.timeout = timeout
        self.env: dict[str, str] = {}
        self.hung_up = False

    # --- the environment ---------------------------------------------------------------------

    async def read_env(self) -> dict[str, str]:
        """Read `agi_*` lines up to the blank line, all within one deadline (a client that
        trickles bytes is cut off as surely as one that sends nothing)."""
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    line = await self._readline()
                    if not line:
                        break
                    if len(self.env) >= MAX_ENV_LINES:
                        raise AgiError("too many environment lines")
                    name, sep, value = line.partition(":")
                    if not sep or not _ENV_NAME.fullmatch(name):
                        raise AgiError(f"not an AGI environment line: {line[:80]!r}")
                    self.env[name] = value[1:] if value.startswith(" ") else value
        except TimeoutError:
            raise AgiError(f"no complete environment within {self.timeout:g} s") from None
        if not self.env:
            raise AgiError("an empty environment")
        return self.env

    def get(self, name: str) -> str:
        """An environment value by its short name ("uniqueid", "callerid"); "" when absent."""
        return self.env.get(f"agi_{name}", "")

    @property
    def script(self) -> str:
        """The path of agi://host:port/<path>[?query], without slashes: "route", "amd"…"""
        return self.get("network_script").split("?", 1)[0].strip("/")

    @property
    def args(self) -> list[str]:
        """The AGI() application's arguments after the URL, in order."""
        found, number = [], 1
        while f"agi_arg_{number}" in self.env:
            found.append(self.env[f"agi_arg_{number}"])
            number += 1
        return found

    # --- commands ------------------------------------------------------------------------------

    async def command(self, command: str) -> AgiReply:
        """Send one command, return its 200 reply; AgiCommandError for 510/511/520."""
        if any(ch in command for ch in "\r\n\0"):
            raise ValueError("an AGI command is one line")
        self._writer.write(command.encode() + b"\n")
        try:
            async with asyncio.timeout(self.timeout):
                await self._writer.drain()
        except TimeoutError:
            raise AgiError("Asterisk stopped reading") from None
        except ConnectionError as error:
            raise AgiClosed(f"connection lost: {error}") from None
        reply = await self._read_reply()
        if reply.code != 200:
            raise AgiCommandError(command, reply)
        return reply

    async def get_variable(self, name: str) -> str | None:
        """A channel variable (or function), None when it is not set."""
        reply = await self.command(f"GET VARIABLE {_variable_name(name)}")
        return reply.data if reply.result == "1" and reply.data is not None else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {_variable_name(name)} {agi_quote(value)}")

    async def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
        try:
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()
        except (TimeoutError, ConnectionError, OSError):
            pass

    # --- reading -------------------------------------------------------------------------------

    async def _read_reply(self) -> AgiReply:
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    line = await self._readline()
                    if line == "HANGUP":
                        self.hung_up = True
                        continue
                    if line.startswith("1") and line[:3].isdigit():
                        continue  # "100 result=0 Trying...": a command still running
                    if not line.startswith("520-"):
                        return parse_reply_line(line)
                    usage: list[str] = []
                    while (more := await self._readline()) != "520 End of proper usage.":
                        if len(usage) >= MAX_USAGE_LINES:
                            raise AgiError("a usage block without its end")
                        usage.append(more)
                    return AgiReply(code=520, text=line[4:], usage="\n".join(usage))
        except TimeoutError:
            raise AgiError(f"no reply within {self.timeout:g} s") from None

    async def _readline(self) -> str:
        try:
            raw = await self._reader.readline()
        except ValueError:  # longer than the reader's limit
            raise AgiError("a line longer than the limit") from None
        except ConnectionError as error:
            raise AgiClosed(f"connection lost: {error}") from None
        if not raw.endswith(b"\n"):
            raise AgiClosed("Asterisk closed the connection")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _variable_name(name: str) -> str:
    if not _VARIABLE.fullmatch(name):
        raise ValueError(f"{name!r} is not a channel variable name")
    return name
