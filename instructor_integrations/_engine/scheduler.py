"""One request queue in front of the model: concurrent calls share forward passes, queries go first.

Every call of an encoder (``encode``, ``encode_pairs``, their ``a``-prefixed awaitable twins, and so
every adapter) becomes a :class:`Request` of prepared rows on one :class:`Scheduler`. One worker thread
takes work from the queue and runs it on the model through an executor function; callers wait on a
``concurrent.futures.Future`` (or an asyncio future wrapping it: no thread is parked per request).
A blocking caller that finds no worker thread running drives the queue itself until its request is
done (:meth:`Scheduler.drive`), so a single caller's forward passes run in its own thread.

How work is chosen, each time the model is free:

* **Interactive requests first.** A request of at most ``interactive_rows`` rows (a query, a handful of
  texts), or one submitted with ``priority="interactive"``, goes ahead of bulk rows already queued.
  Rows of several interactive requests that share an instruction are embedded in one forward pass, up
  to ``batch_size`` rows and the token budget: the oldest waiting row, filled up with the rows of its
  instruction nearest to it in length among the next few batches' worth (less padding).
* **Bulk requests in order.** Otherwise the oldest bulk request's next planned batches run (one at a
  time, or a few at once for executors that run several batches in parallel: worker processes, the
  GPU's staged pipeline). A query that arrives meanwhile waits for at most that unit of work.
* **Announced queries are waited for.** A caller announces an interactive request before it prepares
  its rows (:meth:`Scheduler.announcing`; counting tokens takes a moment, and longer on a CPU whose
  cores the forward pass holds). While one is announced and none is queued, the next bulk batch waits
  for it, up to ``ANNOUNCE_WAIT`` seconds, so a query does not miss the end of the running batch and
  wait for a second one.

A batch that fails fails only the requests with rows in it. A request cancelled before any of its rows
ran is dropped. :meth:`Scheduler.close` fails the requests still queued with
:class:`~instructor_integrations.errors.EncoderClosedError`. This module knows nothing of torch: it
moves row indices and numpy arrays.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .._reference import Batch, plan_batches
from .._validation import PRIORITIES, Priority, check_priority
from ..errors import EncoderClosedError

__all__ = ["PRIORITIES", "Priority", "Request", "Scheduler", "check_priority"]

logger = logging.getLogger(__name__)

#: Interactive rows considered for one pass: this many batches' worth, the oldest first.
MERGE_WINDOW = 8
#: Seconds a bulk batch waits, at most, for an announced interactive request to be queued.
ANNOUNCE_WAIT = 0.1

#: Runs forward passes: ``[(prompt, bodies), ...]`` to one float32 array per batch, in order.
Executor = Callable[[list[tuple[str, list[str]]]], list[np.ndarray]]


@dataclass(eq=False)
class Request:
    """Rows to embed for one call, and where their vectors go."""

    prompts: list[str]
    bodies: list[str]
    lengths: list[int]
    interactive: bool
    out: np.ndarray
    future: Future[np.ndarray]
    on_rows: Callable[[int], object] | None = None
    finish: Callable[[np.ndarray], np.ndarray] | None = None
    batch_size: int | None = None
    batches: deque[Batch] = field(default_factory=deque)
    pending: deque[int] = field(default_factory=deque)
    remaining: int = 0
    started: bool = False


class Scheduler:
    """The queue and the thread that feeds the model (see the module doc).

    Args:
        execute: Runs a list of batches on the model (in this scheduler's worker thread only).
        limits: The current ``(batch_size, token_budget, max_seq_length)``: default rows per forward pass,
            cap on its padded tokens (``None``: none), and the most tokens a row counts for.
        parallel: How many planned bulk batches to hand ``execute`` at once, now.
        interactive_rows: Requests of at most this many rows are interactive under ``priority="auto"``.
        on_idle: Called in the worker thread each time the queue runs empty.
        idle_seconds: The worker thread ends after this long without work (a new request starts it).
    """

    def __init__(
        self,
        execute: Executor,
        *,
        limits: Callable[[], tuple[int, int | None, int]],
        parallel: Callable[[], int] = lambda: 1,
        interactive_rows: int = 16,
        on_idle: Callable[[], object] | None = None,
        idle_seconds: float = 1.0,
    ) -> None:
        self._execute = execute
        self._limits = limits
        self._parallel = parallel
        self.interactive_rows = interactive_rows
        self._on_idle = on_idle
        self._idle_seconds = idle_seconds
        self._reset()
        self._names = itertools.count()
        #: Forward passes run, and rows they held (read by tests and benchmarks).
        self.passes = 0
        self.rows_run = 0
        #: Called after each forward pass with its rows and tokens (each row's, at most max_seq_length).
        self.listeners: list[Callable[[int, int], object]] = []

    def _reset(self) -> None:
        """A fresh queue, lock and no thread (at creation, and in a child process made by fork)."""
        self._pid = os.getpid()
        self._lock = threading.Condition()
        self._interactive: deque[Request] = deque()
        self._bulk: deque[Request] = deque()
        #: Interactive requests announced and still being prepared (see :meth:`announcing`).
        self._announced = 0
        self._thread: threading.Thread | None = None
        #: A caller thread running the queue itself while its own request is pending (see :meth:`drive`).
        self._driver: threading.Thread | None = None

    # ------------------------------------------------------------------ submitting
    def submit(
        self,
        prompts: Sequence[str],
        bodies: Sequence[str],
        lengths: Sequence[int],
        *,
        dim: int,
        batch_size: int | None = None,
        priority: Priority = "auto",
        on_rows: Callable[[int], object] | None = None,
        finish: Callable[[np.ndarray], np.ndarray] | None = None,
        drive: bool = False,
    ) -> Future[np.ndarray]:
        """Queue rows; the future's result is a float32 ``(len(rows), dim)`` array in row order.

        ``finish`` is applied to the whole array when the last row is in (in the thread that runs the
        work), and its exception, if any, becomes the future's. With ``drive=True`` a caller that will wait
        for the result may run the queue itself (call :meth:`drive` next) instead of waking the worker thread.
        """
        check_priority(priority)
        future: Future[np.ndarray] = Future()
        n = len(bodies)
        out = np.empty((n, dim), dtype=np.float32)
        if n == 0:
            future.set_result(finish(out) if finish else out)
            return future
        interactive = self.is_interactive(priority, n)
        request = Request(
            list(prompts),
            list(bodies),
            list(lengths),
            interactive,
            out,
            future,
            on_rows,
            finish,
            batch_size=batch_size,
            remaining=n,
        )
        if interactive:
            request.pending.extend(range(n))
        else:
            default_size, budget, limit = self._limits()
            request.batches.extend(
                plan_batches(
                    request.prompts,
                    request.lengths,
                    batch_size=batch_size or default_size,
                    token_budget=budget,
                    max_seq_length=limit,
                )
            )
        if os.getpid() != self._pid:  # forked: the parent's thread and queue are not this process's
            self._reset()
        with self._lock:
            (self._interactive if interactive else self._bulk).append(request)
            if self._thread is None and self._driver is None:
                if drive:
                    self._driver = threading.current_thread()
                else:
                    self._start_thread()
            self._lock.notify()
        return future

    def is_interactive(self, priority: Priority, rows: int) -> bool:
        """Whether a request of ``rows`` rows with ``priority`` goes ahead of bulk work (see the module doc)."""
        return priority == "interactive" or (priority == "auto" and rows <= self.interactive_rows)

    @contextmanager
    def announcing(self, interactive: bool = True) -> Iterator[None]:
        """Announce an interactive request while its rows are prepared; submit it inside the block.

        Until the block ends, a bulk batch about to start waits (up to ``ANNOUNCE_WAIT`` seconds) for
        the request to be queued, so it goes first. ``interactive=False`` announces nothing.
        """
        if not interactive:
            yield
            return
        with self._lock:
            self._announced += 1
        try:
            yield
        finally:
            with self._lock:
                self._announced -= 1
                self._lock.notify_all()

    def _start_thread(self) -> None:
        """Start the worker thread (under the lock)."""
        self._thread = threading.Thread(target=self._run, name=f"instructor-engine-{next(self._names)}", daemon=True)
        self._thread.start()

    def drive(self, future: Future[np.ndarray]) -> None:
        """Run the queue in this thread until ``future`` (this caller's request) is done, if it is the driver.

        A blocking caller with no worker thread running does the work itself: its forward passes run in
        its own thread, as they would without a queue (on the CPU, OpenMP's threads serve the thread
        that already has them). Rows other callers queue meanwhile are run in their turn; what is left
        when this caller's request is done goes to the worker thread.
        """
        if self._driver is not threading.current_thread():
            return
        idle = False
        try:
            while not future.done():
                with self._lock:
                    work = self._take()
                if not work:  # the request was dropped (cancelled) or closed
                    break
                self._run_work(work)
        finally:
            with self._lock:
                self._driver = None
                if self._interactive or self._bulk:
                    if self._thread is None:
                        self._start_thread()
                else:
                    idle = True
            if idle and self._on_idle is not None:
                self._on_idle()

    def queued(self) -> tuple[int, int]:
        """Requests waiting: ``(interactive, bulk)``."""
        with self._lock:
            return len(self._interactive), len(self._bulk)

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Fail every queued request with :class:`EncoderClosedError`; the work running now completes.

        The scheduler stays usable: a later request starts a new worker thread.
        """
        with self._lock:
            dropped = [*self._interactive, *self._bulk]
            self._interactive.clear()
            self._bulk.clear()
            thread = self._thread
        for request in dropped:
            if not request.future.done():
                request.future.set_exception(
                    EncoderClosedError("the encoder was closed before this request's rows were embedded")
                )
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)

    # ------------------------------------------------------------------ the worker thread
    def _run(self) -> None:
        while True:
            with self._lock:
                work = self._take()
                if not work:
                    if self._on_idle is not None:
                        self._lock.release()
                        try:
                            self._on_idle()
                        finally:
                            self._lock.acquire()
                    self._lock.wait_for(lambda: bool(self._interactive or self._bulk), timeout=self._idle_seconds)
                    work = self._take()
                    if not work:
                        self._thread = None
                        return
            self._run_work(work)

    def _take(self) -> list[tuple[str, list[tuple[Request, list[int]]]]]:
        """The next unit of work: batches, each a prompt and the (request, rows) it holds. Under the lock."""
        self._drop_cancelled(self._interactive)
        self._drop_cancelled(self._bulk)
        if self._announced and self._bulk and not self._interactive:
            self._lock.wait_for(lambda: bool(self._interactive) or not self._announced, timeout=ANNOUNCE_WAIT)
            self._drop_cancelled(self._interactive)
            self._drop_cancelled(self._bulk)
        if self._interactive:
            return [self._merged_batch()]
        if self._bulk:
            request = self._bulk[0]
            unit: list[tuple[str, list[tuple[Request, list[int]]]]] = []
            parallel = max(1, self._parallel())
            while request.batches and len(unit) < parallel:
                prompt, members = request.batches.popleft()
                unit.append((prompt, [(request, members)]))
            if not request.batches:
                self._bulk.popleft()
            return unit
        return []

    @staticmethod
    def _drop_cancelled(queue: deque[Request]) -> None:
        for request in [r for r in queue if r.future.cancelled()]:
            queue.remove(request)

    def _merged_batch(  # noqa: C901 - the merge rule (one prompt, oldest first, within the limits) read as one
        self,
    ) -> tuple[str, list[tuple[Request, list[int]]]]:
        """A pass of interactive rows sharing the oldest waiting row's prompt, from every interactive request.

        The oldest waiting row always goes, so no row waits behind rows that came later; the pass is
        filled with the rows nearest to it in length among the next ``MERGE_WINDOW`` batches' worth of rows
        with its prompt (rows of similar length pad less, as in a planned batch).
        """
        first = self._interactive[0]
        oldest = first.pending[0]
        prompt = first.prompts[oldest]
        batch_size, budget, limit = self._limits()
        batch_size = min(batch_size, first.batch_size or batch_size)
        window = MERGE_WINDOW * batch_size
        candidates: list[tuple[int, Request, int]] = []
        for request in self._interactive:
            for index in request.pending:
                if request.prompts[index] == prompt and not (request is first and index == oldest):
                    candidates.append((min(request.lengths[index], limit), request, index))
            if len(candidates) >= window:
                break
        anchor = min(first.lengths[oldest], limit)
        candidates.sort(key=lambda candidate: abs(candidate[0] - anchor))  # stable: older rows first on ties
        chosen: dict[int, tuple[Request, list[int]]] = {id(first): (first, [oldest])}
        count, widest = 1, anchor
        for length, request, index in candidates:
            if count >= min(batch_size, request.batch_size or batch_size):
                break
            if budget is not None and (count + 1) * max(widest, length) > budget:
                continue  # too long to join this pass; a shorter row may still fit
            chosen.setdefault(id(request), (request, []))[1].append(index)
            count, widest = count + 1, max(widest, length)
        taken = list(chosen.values())
        for request, rows in taken:
            for index in rows:
                request.pending.remove(index)
            if not request.pending:
                self._interactive.remove(request)
        return prompt, taken

    def _run_work(  # noqa: C901 - every way a pass ends (done, cancelled, failed, closed) settled under one lock
        self, work: list[tuple[str, list[tuple[Request, list[int]]]]]
    ) -> None:
        for _, parts in work:
            for request, _ in parts:
                if not request.started:
                    request.started = True
                    request.future.set_running_or_notify_cancel()
        calls = [(prompt, [r.bodies[i] for r, rows in parts for i in rows]) for prompt, parts in work]
        try:
            results = self._execute(calls)
        except BaseException as exc:  # a failed batch fails the requests in it, and only those
            failed = {request for _, parts in work for request, _ in parts}
            logger.warning("A batch of %d row(s) failed: %s: %s", sum(map(len, calls)), type(exc).__name__, exc)
            with self._lock:
                for queue in (self._interactive, self._bulk):
                    for request in [r for r in queue if r in failed]:
                        queue.remove(request)
            for request in failed:
                if not request.future.done():
                    request.future.set_exception(exc)
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: this thread ends
                with self._lock:
                    if self._thread is threading.current_thread():
                        self._thread = None
                raise
            return
        self.passes += len(calls)
        self.rows_run += sum(len(bodies) for _, bodies in calls)
        if self.listeners:
            limit = self._limits()[2]
            for _, parts in work:
                count = sum(len(members) for _, members in parts)
                tokens = sum(min(r.lengths[i], limit) for r, members in parts for i in members)
                for listener in self.listeners:
                    try:
                        listener(count, tokens)
                    except Exception:  # a metrics hook never fails a batch
                        logger.exception("A pass listener failed")
        for (_, parts), vectors in zip(work, results, strict=True):
            start = 0
            for request, rows in parts:
                request.out[rows] = vectors[start : start + len(rows)]
                start += len(rows)
                request.remaining -= len(rows)
                if request.on_rows is not None:
                    request.on_rows(len(rows))
                if request.remaining == 0 and not request.future.done():
                    self._complete(request)

    @staticmethod
    def _complete(request: Request) -> None:
        try:
            result = request.finish(request.out) if request.finish else request.out
        except Exception as exc:
            request.future.set_exception(exc)
        else:
            request.future.set_result(result)
