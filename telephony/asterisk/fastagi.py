"""The FastAGI server: Asterisk's dialplan asks it, by path, what to do with a call.

    AGI(agi://voicecrm:4573/route)    inbound: create the Call; set VOICECRM_ROUTE (ok | unknown),
                                      VOICECRM_CALL_UUID, VOICECRM_AGENT, VOICECRM_CUSTOMER,
                                      VOICECRM_OPEN_TICKETS ("" or no path: route too)
    AGI(agi://voicecrm:4573/amd)      outbound, after AMD(): store what answered (Call.answered_by);
                                      set VOICECRM_ANSWERED_BY (human | machine | unknown)
    AGI(agi://voicecrm:4573/after)    after AudioSocket(): VOICECRM_TRANSFER when the agent handed over
    AGI(agi://voicecrm:4573/hangup)   in the h extension: busy, no answer, canceled or failed for a
                                      call whose audio never connected; a transfer's outcome

One connection runs one step. The rules live in telephony/asterisk/services.py, run in a small
thread pool (the ORM is synchronous). A connection that breaks the protocol, stalls or sends
garbage is closed and counted; the others go on. FastAGI has no authentication: peers outside
FASTAGI_ALLOWED_NETWORKS are closed before a byte is read (docs/asterisk.md, Firewalling).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from functools import partial

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from telephony.asterisk import services
from telephony.asterisk.agi import AgiClosed, AgiCommandError, AgiError, AgiSession

logger = logging.getLogger(__name__)

# Asterisk answers a command in microseconds and sends its environment at once: 10 s of silence
# is a stalled or foreign client. A dialplan AGI() waits for us as long as we take.
READ_TIMEOUT_S = 10.0
# Steps at once; each is a few milliseconds of queries, so more only means a flood.
MAX_CONNECTIONS = 200
DB_THREADS = 4
# Longest AGI line (an environment value, a reply): Asterisk's own buffer is 2048 bytes.
LINE_LIMIT = 8192
# `after` runs the moment AudioSocket() returns, maybe while the voice session is still storing
# its last writes: how long to wait for it to log a transfer or end the call.
AFTER_WAIT_S = 5.0
AFTER_POLL_S = 0.1
# The database threads keep their connections (opening one costs more than a step's queries); one
# idle this long is checked before use, as PostgreSQL or a proxy may have dropped it.
DB_CHECK_AFTER_IDLE_S = 30.0
_DB_LOST = (InterfaceError, OperationalError)

Db = Callable[..., Awaitable]


class FastAgiServer:
    """`await start()`, then serve until `await close()`. `stats` counts what happened."""

    def __init__(
        self, *, host: str, port: int, timeout: float = READ_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS,
        allowed_networks: list[str] | None = None,
    ) -> None:
        self.host, self.port, self.timeout, self.max_connections = host, port, timeout, max_connections
        networks = settings.FASTAGI_ALLOWED_NETWORKS if allowed_networks is None else allowed_networks
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in networks]
        self.stats: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._pool = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="fastagi-db")
        self._active: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=LINE_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self, *, grace: float = 5.0) -> None:
        """Stop accepting, give running steps `grace` seconds, then cut them off."""
        if self._server is not None:
            self._server.close()
        if self._active:
            _, pending = await asyncio.wait(set(self._active), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.get_running_loop().run_in_executor(None, self._close_connections)
        self._pool.shutdown(wait=True)

    def _close_connections(self) -> None:
        """Close the connection of every database thread: one job each, held at a barrier until
        all have started, so no thread takes two."""
        barrier = threading.Barrier(DB_THREADS, timeout=5)

        def close() -> None:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass  # a thread still busy: the others close theirs anyway
            connection.close()

        wait_futures([self._pool.submit(close) for _ in range(DB_THREADS)])

    async def db(self, fn, **kwargs):
        """Run one service function in the database threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(_db_job, fn, kwargs))

    def _allows(self, peer) -> bool:
        if not self.allowed:
            return True
        try:
            address = ipaddress.ip_address(peer[0] if isinstance(peer, tuple) else peer)
        except (TypeError, ValueError):
            return False
        return any(address in network for network in self.allowed)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        agi = AgiSession(reader, writer, timeout=self.timeout)
        peer = writer.get_extra_info("peername")
        if not self._allows(peer):
            self.stats["refused_address"] += 1
            logger.warning("FastAGI: refused %s (not in FASTAGI_ALLOWED_NETWORKS)", peer)
            await agi.close()
            return
        if len(self._active) >= self.max_connections:
            self.stats["refused_busy"] += 1
            logger.warning("FastAGI: refused %s, %d steps already running", peer, len(self._active))
            await agi.close()
            return
        task = asyncio.current_task()
        self._active.add(task)
        self.stats["connections"] += 1
        try:
            await agi.read_env()
            name = agi.script or "route"
            step = STEPS.get(name)
            if step is None:
                # The dialplan goes on with nothing set: VOICECRM_ROUTE is not "ok".
                self.stats["unknown_step"] += 1
                logger.warning("FastAGI: no step %r (from %s)", name[:40], peer)
                return
            await step(agi, self.db)
            self.stats[f"step_{name}"] += 1
        except AgiCommandError as error:
            self.stats["refused_command"] += 1
            level = logging.INFO if error.code == 511 else logging.WARNING  # 511: the caller had hung up
            logger.log(level, "FastAGI: %s (from %s)", error, peer)
        except AgiClosed as error:
            self.stats["closed_early"] += 1
            logger.info("FastAGI: %s (from %s)", error, peer)
        except AgiError as error:
            self.stats["protocol_errors"] += 1
            logger.warning("FastAGI: protocol error from %s: %s", peer, error)
        except Exception:
            self.stats["errors"] += 1
            logger.exception("FastAGI: step failed (from %s)", peer)
        finally:
            self._active.discard(task)
            await agi.close()


_thread = threading.local()


def _db_job(fn, kwargs):
    if connection.connection is not None and (
        connection.errors_occurred or time.monotonic() - getattr(_thread, "last_used", 0.0) >= DB_CHECK_AFTER_IDLE_S
    ):
        if not connection.is_usable():
            connection.close()
        connection.errors_occurred = False
    try:
        return fn(**kwargs)
    except _DB_LOST:
        if connection.in_atomic_block:
            raise
        # Every step's database work is idempotent (a Call per channel, reports that only move a
        # call forward): run it once more on a fresh connection.
        connection.close()
        logger.warning("FastAGI: database connection lost; retrying %s once", getattr(fn, "__name__", fn))
        return fn(**kwargs)
    finally:
        _thread.last_used = time.monotonic()


# --- The steps ----------------------------------------------------------------------------------


async def step_route(agi: AgiSession, db: Db) -> None:
    unique_id = agi.get("uniqueid")
    if not unique_id:
        raise AgiError("no agi_uniqueid")
    decision = await db(
        services.asterisk_call_route, unique_id=unique_id, caller_id=agi.get("callerid"),
        dialed=[*agi.args[:1], agi.get("extension"), agi.get("dnid")],
    )
    if decision is None:
        await agi.set_variable("VOICECRM_ROUTE", "unknown")
        return
    for name, value in decision.variables().items():
        await agi.set_variable(name, value)
    # Last: the dialplan sees "ok" only once everything else is set.
    await agi.set_variable("VOICECRM_ROUTE", "ok")
    if agi.hung_up:  # the caller left while the call was being set up: no h extension needed
        await db(services.asterisk_call_hangup, call=decision.call, dial_status="", hangup_cause="")


async def step_amd(agi: AgiSession, db: Db) -> None:
    call = await _call(agi, db)
    status = await agi.get_variable("AMDSTATUS") or ""
    cause = await agi.get_variable("AMDCAUSE") or ""
    answered_by = await db(services.asterisk_amd_record, call=call, status=status, cause=cause)
    await agi.set_variable("VOICECRM_ANSWERED_BY", answered_by)


async def step_after(agi: AgiSession, db: Db) -> None:
    call = await _call(agi, db)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + AFTER_WAIT_S
    while True:
        check = await db(services.asterisk_transfer_target, call=call)
        if check.settled or loop.time() >= deadline:
            break
        await asyncio.sleep(AFTER_POLL_S)
    await agi.set_variable("VOICECRM_TRANSFER", check.target)


async def step_hangup(agi: AgiSession, db: Db) -> None:
    call = await _call(agi, db)
    dial_status = await agi.get_variable("DIALSTATUS") or ""
    cause = await agi.get_variable("HANGUPCAUSE") or ""
    transfer = await agi.get_variable("VOICECRM_TRANSFER") or ""
    await db(services.asterisk_call_hangup, call=call, dial_status=dial_status, hangup_cause=cause, transfer=transfer)


async def _call(agi: AgiSession, db: Db):
    call_uuid = await agi.get_variable("VOICECRM_CALL_UUID") or ""
    return await db(services.asterisk_call_find, call_uuid=call_uuid, unique_id=agi.get("uniqueid"))


STEPS: dict[str, Callable[[AgiSession, Db], Awaitable[None]]] = {
    "route": step_route, "amd": step_amd, "after": step_after, "hangup": step_hangup,
}
