"""Composing emails (render, CSS inlining, MIME) off the event loop, overlapped with sending.

The dispatcher hands over a claimed batch; it is cut into chunks of CHUNK rows, all
submitted at once to an executor that composes them in order, and the dispatcher sends
chunk k while chunk k + 1 composes. Composing is pure-Python CPU work (Jinja2, the `email`
package's generator: about 2 ms per message here, most of a message's cost), so:

- OUTBOX_COMPOSE_PROCESSES=0: one thread of this process. It holds the GIL the event loop
  needs, so composing and sending take turns on one core;
- N ≥ 1: N worker processes (started on first use, `spawn`: no fork of a process with
  threads and open connections), each with its own EmailService; composing runs on
  another core beside the event loop. Figures in the README ("Newsletters" benchmark).

A newsletter's staff content arrives as source (`BulkSource`) and is compiled once per
process and newsletter (a small cache: content never changes after a draft is created).
"""

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from app.core.config import Settings
from app.services.email.bulk import BulkContent, BulkSource
from app.services.email.sender import OutgoingEmail
from app.services.email.service import EmailService

logger = logging.getLogger("app.email.outbox")

CHUNK = 10
PARENT_CHECK_SECONDS = 0.5
_CACHED_CONTENTS = 16


@dataclass(frozen=True, slots=True)
class ComposeJob:
    """One outbox row to compose (plain data: it may travel to another process)."""

    row_id: int
    to: str
    template: str
    locale: str
    data: dict[str, Any]
    message_id: str
    date: datetime
    newsletter_id: UUID | None = None
    bulk: BulkSource | None = None


class ComposeFailed(Exception):
    """A row that cannot be composed (a template bug, bad data): `Type: message`."""


class _ContentCache:
    def __init__(self) -> None:
        self._compiled: OrderedDict[UUID, BulkContent] = OrderedDict()

    def get(self, newsletter_id: UUID, source: BulkSource) -> BulkContent:
        content = self._compiled.get(newsletter_id)
        if content is None:
            content = source.compile()
            self._compiled[newsletter_id] = content
            if len(self._compiled) > _CACHED_CONTENTS:
                self._compiled.popitem(last=False)
        return content


def compose_chunk(
    service: EmailService, cache: _ContentCache, jobs: Sequence[ComposeJob]
) -> list[tuple[int, OutgoingEmail | ComposeFailed]]:
    out: list[tuple[int, OutgoingEmail | ComposeFailed]] = []
    for job in jobs:
        try:
            bulk = None
            if job.newsletter_id is not None:
                if job.bulk is None:
                    raise LookupError(f"no content for newsletter {job.newsletter_id}")
                bulk = cache.get(job.newsletter_id, job.bulk)
            email = service.compose(
                to=job.to,
                template=job.template,
                locale=job.locale,
                data=job.data,
                message_id=job.message_id,
                date=job.date,
                bulk=bulk,
            )
            out.append((job.row_id, email))
        except Exception as exc:
            logger.exception("email outbox: row %s cannot be rendered", job.row_id)
            out.append((job.row_id, ComposeFailed(f"{type(exc).__name__}: {exc}")))
    return out


# In a worker process: its own service and cache, built once by the initializer.
_process_state: tuple[EmailService, _ContentCache] | None = None


def _start_process(settings: Settings) -> None:
    global _process_state
    from app.core.logs import configure_logging  # noqa: PLC0415  (the child's own logging)

    configure_logging()
    _process_state = (EmailService(settings), _ContentCache())
    # A parent killed outright (SIGKILL, out of memory) cannot shut the pool down, and the
    # worker would wait for work forever: it leaves as soon as its parent is gone.
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _compose_in_process(jobs: Sequence[ComposeJob]) -> list[tuple[int, Any]]:
    assert _process_state is not None
    return compose_chunk(*_process_state, jobs)


class Composer:
    def __init__(self, service: EmailService, processes: int) -> None:
        self.service = service
        self.processes = processes
        self._executor: Executor | None = None
        self._cache = _ContentCache()  # thread mode

    def _executor_now(self) -> Executor:
        if self._executor is None:
            if self.processes:
                self._executor = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_process,
                    initargs=(self.service.settings,),
                )
            else:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="email-compose")
        return self._executor

    def stream(self, jobs: Sequence[ComposeJob]) -> "ComposeStream":
        """Start composing `jobs` (in CHUNKs, in order); read them with `await get(id)`.

        A composing process that died (killed, out of memory) breaks its pool: the batch
        reading it fails (its rows stay leased and go out after the lease), and the pool
        says so at the next batch's start, which then gets a fresh pool. A process that
        dies between batches is found the same way."""
        try:
            futures = self._submit(jobs)
        except BrokenExecutor:
            self.close()
            futures = self._submit(jobs)
        return ComposeStream(futures)

    def _submit(self, jobs: Sequence[ComposeJob]) -> list[asyncio.Future[list[tuple[int, Any]]]]:
        loop = asyncio.get_running_loop()
        executor = self._executor_now()
        futures: list[asyncio.Future[list[tuple[int, Any]]]] = []
        try:
            for start in range(0, len(jobs), CHUNK):
                chunk = list(jobs[start : start + CHUNK])
                if self.processes:
                    futures.append(loop.run_in_executor(executor, _compose_in_process, chunk))
                else:
                    futures.append(
                        loop.run_in_executor(
                            executor, compose_chunk, self.service, self._cache, chunk
                        )
                    )
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return futures

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class ComposeStream:
    def __init__(self, futures: list[asyncio.Future[list[tuple[int, Any]]]]) -> None:
        self._futures = futures
        self._next = 0
        self._done: dict[int, OutgoingEmail | ComposeFailed] = {}

    async def get(self, row_id: int) -> OutgoingEmail | ComposeFailed:
        while row_id not in self._done:
            if self._next >= len(self._futures):
                raise KeyError(row_id)
            future = self._futures[self._next]
            self._next += 1
            self._done.update(await future)
        return self._done.pop(row_id)

    def cancel(self) -> None:
        """Stop what has not started (the batch ended early); started chunks finish."""
        for future in self._futures[self._next :]:
            future.cancel()
