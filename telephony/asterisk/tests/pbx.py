"""Asterisk's side of a FastAGI connection, for tests: what res_agi.c sends and answers.

`agi_environment()` is the environment Asterisk 20 sends (launch_netscript, then setup_env, in
that order, each "%s: %s\\n", ending with a blank line). `FakeChannel` connects like AGI() does,
sends it, then answers each command as res_agi.c would for the commands the product uses:

    GET VARIABLE <name>           200 result=1 (<value>) | 200 result=0
    SET VARIABLE <name> <value>   200 result=1
    anything else                 510 Invalid or unknown command
    wrong argument count          520-… usage … 520 End of proper usage.

Arguments are split with a port of res_agi.c's parse_args (double quotes, backslash escapes), so
a value the product quotes wrongly arrives wrong here too. Tests can script replies, a HANGUP
line before a given command (the caller hanging up), and a dead channel (the h extension).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

USAGE_SET_VARIABLE = [
    " Usage: SET VARIABLE <variablename> <value>",
    "\tSets a variable to the current channel.",
]


def agi_environment(
    *, port: int, script: str = "route", uniqueid: str = "1733030400.42", callerid: str = "+14155552671",
    calleridname: str = "Ada Caller", extension: str = "7000", dnid: str = "7000", context: str = "voicecrm-inbound",
    channel: str = "PJSIP/alice-00000002", args: tuple[str, ...] = (), priority: int = 2,
) -> bytes:
    lines = ["agi_network: yes"]
    if script:
        lines.append(f"agi_network_script: {script}")
    lines += [
        f"agi_request: agi://127.0.0.1:{port}/{script}",
        f"agi_channel: {channel}",
        "agi_language: en",
        "agi_type: PJSIP",
        f"agi_uniqueid: {uniqueid}",
        "agi_version: 20.10.0",
        f"agi_callerid: {callerid}",
        f"agi_calleridname: {calleridname}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        f"agi_dnid: {dnid}",
        "agi_rdnis: unknown",
        f"agi_context: {context}",
        f"agi_extension: {extension}",
        f"agi_priority: {priority}",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140179183380160",
    ]
    lines += [f"agi_arg_{number}: {value}" for number, value in enumerate(args, start=1)]
    return ("\n".join(lines) + "\n\n").encode()


def parse_args(line: str) -> list[str]:
    """res_agi.c parse_args(): words split on unquoted, unescaped spaces and tabs; a double quote
    toggles quoting; a backslash makes the next character literal."""
    argv: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and current is None:
                current = []
            continue
        if ch in " \t" and not quoted and not escaped:
            if current is not None:
                argv.append("".join(current))
                current = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if current is None:
            current = []
        current.append(ch)
        escaped = False
    if current is not None:
        argv.append("".join(current))
    return argv


@dataclass
class FakeChannel:
    """One channel running AGI(agi://…): `run()` returns once the server closes the connection."""

    port: int
    variables: dict[str, str] = field(default_factory=dict)
    # Raw reply lines for the Nth command (0-based), instead of what Asterisk would answer.
    scripted: dict[int, list[str]] = field(default_factory=dict)
    # Send "HANGUP" before answering this command (0-based): the caller hangs up mid-script.
    hangup_before: int | None = None
    dead: bool = False  # already hung up (the h extension): only dead-capable commands run
    commands: list[str] = field(default_factory=list)
    replies: list[list[str]] = field(default_factory=list)

    def run(self, environment: bytes, *, timeout: float = 20.0) -> FakeChannel:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(environment)
            stream = sock.makefile("rb")
            while True:
                raw = stream.readline()
                if not raw:
                    return self  # the server closed: the AGI() application returns
                command = raw.decode().rstrip("\n")
                index = len(self.commands)
                self.commands.append(command)
                lines = []
                if self.hangup_before == index:
                    lines.append("HANGUP")
                    self.dead = True
                lines += self.scripted.get(index) or self.answer(command)
                self.replies.append(lines)
                sock.sendall("".join(f"{line}\n" for line in lines).encode())

    def answer(self, command: str) -> list[str]:
        argv = parse_args(command)
        verb = " ".join(argv[:2]).upper()
        if verb == "SET VARIABLE":
            if len(argv) != 4:
                return ["520-Invalid command syntax.  Proper usage follows:", *USAGE_SET_VARIABLE,
                        "520 End of proper usage."]
            self.variables[argv[2]] = argv[3]
            return ["200 result=1"]
        if verb == "GET VARIABLE":
            if len(argv) != 3:
                return ["520 Invalid command syntax.  Proper usage not available."]
            value = self.variables.get(argv[2])
            return ["200 result=0"] if value is None else [f"200 result=1 ({value})"]
        if verb == "ANSWER" and self.dead:
            return ["511 Command Not Permitted on a dead channel"]
        return ["510 Invalid or unknown command"]

    @property
    def set_order(self) -> list[str]:
        """The variables the server set, in the order it set them."""
        return [parse_args(c)[2] for c in self.commands if parse_args(c)[:2] == ["SET", "VARIABLE"]]
