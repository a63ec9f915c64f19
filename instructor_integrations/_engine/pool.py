"""Data parallelism in one machine: worker processes, each with its own copy of the model.

On a CPU, one process running a small encoder on all cores spends much of each operator waiting for
its OpenMP threads; several processes with fewer threads each keep every core busy on its own batch
(see docs/performance.md for when it pays). On CUDA the
workers share one GPU: each tokenizes and runs sentence-transformers' per-text work under its own
interpreter lock, which pays when the compiled model leaves the host as the bottleneck.
:class:`WorkerPool` starts the processes with the ``spawn`` method (``fork`` after torch has started
its threads is unsafe), builds a :class:`~instructor_integrations._engine.runner.ModelRunner` from the
parent's resolved :class:`~instructor_integrations.settings.EncoderSettings` in each, and runs the
batches the parent planned. Results come back in order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

import numpy as np

from ..settings import EncoderSettings
from .cpu import cpu_tuning_enabled

if TYPE_CHECKING:
    from .runner import ModelRunner

__all__ = ["WorkerPool"]

logger = logging.getLogger(__name__)

_WORKER: ModelRunner | None = None

#: The batch each worker embeds once when it starts: two rows of different lengths. With ``compile=True``
#: this compiles the graph that every batch of two or more rows runs (``torch.compile`` gives a batch of
#: one row a graph of its own), so the compiling happens when the pool starts, not in the first call.
WARM_UP_BATCH: tuple[str, list[str]] = ("", ["warm up", "warm"])


def _start_worker(settings: EncoderSettings, threads: int, tuned: bool = False) -> None:
    """Process initializer: the parent's CPU tuning choice, the thread count, the model loaded once, a warm-up batch."""
    global _WORKER
    if tuned:  # the parent opted in (its GOMP_SPINCOUNT came with the environment)
        from .cpu import tune_cpu

        tune_cpu()
    import torch

    torch.set_num_threads(threads)
    from .runner import ModelRunner

    _WORKER = ModelRunner(settings)
    _WORKER.embed(*WARM_UP_BATCH)


def _ready() -> int:
    """A task that returns once the worker's initializer has run (its process id)."""
    return os.getpid()


def _embed(prompt: str, bodies: list[str]) -> np.ndarray:
    """One planned batch, in a worker: float32 rows, not yet renormalised."""
    if _WORKER is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("encoder worker process was not initialised")
    return _WORKER.embed(prompt, bodies)


class WorkerPool:
    """``workers`` processes that each hold a copy of one encoder's model.

    Args:
        settings: The encoder's resolved settings (``InstructorEncoder.settings``), for the model in each worker.
        workers: Number of processes (2 or more).
        threads: Torch threads per process.

    Examples:
        >>> settings = EncoderSettings("tests/fixtures/tiny-instructor", device="cpu", instructor_pooling=True)
        >>> pool = WorkerPool(settings, 2, 1)
        >>> [rows.shape for rows in pool.run([("", ["a", "b"]), ("", ["c"])])]
        [(2, 24), (1, 24)]
        >>> pool.close()
    """

    def __init__(self, settings: EncoderSettings, workers: int, threads: int) -> None:
        self.workers = workers
        self.threads = threads
        self._settings = settings
        self._executor: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        """Whether the worker processes are running."""
        return self._executor is not None

    def _start(self) -> ProcessPoolExecutor:
        if self._executor is None:
            started = time.perf_counter()
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self._settings, self.threads, cpu_tuning_enabled()),
            )
            # Start the workers now (each loads the model and runs its warm-up batch in its initializer)
            # and wait for them, so a failure shows here and not mid-corpus.
            futures = [self._executor.submit(_ready) for _ in range(self.workers)]
            try:
                for future in futures:
                    future.result()
            except BrokenProcessPool as exc:
                self.close()
                model = self._settings.model_name_or_path
                raise RuntimeError(
                    f"encoder worker processes could not start for {model!r}: {exc}. "
                    "Scripts that use num_workers > 1 must start from an `if __name__ == '__main__':` block "
                    "(the workers are started with multiprocessing's spawn method)."
                ) from exc
            logger.info(
                "Started %d encoder worker processes (%d threads each) in %.1f s",
                self.workers,
                self.threads,
                time.perf_counter() - started,
            )
        return self._executor

    def map(self, batches: Sequence[tuple[str, list[str]]]) -> Iterator[np.ndarray]:
        """Embed ``(prompt, bodies)`` batches in the workers; yields each batch's rows in order.

        Raises:
            RuntimeError: A worker process died (for example killed for memory); the pool is closed
                and the next call starts a new one.
        """
        executor = self._start()
        futures = []
        try:
            # submit() itself raises when a worker died since the last call.
            futures = [executor.submit(_embed, prompt, bodies) for prompt, bodies in batches]
            for future in futures:
                yield future.result()
        except BrokenProcessPool as exc:
            self.close()
            raise RuntimeError(f"an encoder worker process died: {exc}") from exc
        finally:
            for future in futures:
                future.cancel()

    def run(self, batches: Sequence[tuple[str, list[str]]]) -> list[np.ndarray]:
        """:meth:`map`, as a list (the interface :class:`~.runner.ModelRunner` has too)."""
        return list(self.map(batches))

    def close(self) -> None:
        """Stop the worker processes (a later :meth:`map` starts new ones)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
