"""The request queue (_scheduler.Scheduler) with a stand-in model: order, priority, sharing, faults, lifecycle."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest

from instructor_integrations import EncoderClosedError
from instructor_integrations._engine.scheduler import Scheduler


class Model:
    """Embeds a body as [len(body), prompt id]; can hold every pass until released, and records passes."""

    def __init__(self, *, hold: bool = False) -> None:
        self.passes: list[tuple[str, list[str]]] = []
        self.gate = threading.Event()
        self.running = threading.Event()
        if not hold:
            self.gate.set()
        self.fail_on: str | None = None

    def __call__(self, calls: list[tuple[str, list[str]]]) -> list[np.ndarray]:
        self.running.set()
        assert self.gate.wait(timeout=30), "the test never released the model"
        out = []
        for prompt, bodies in calls:
            self.passes.append((prompt, list(bodies)))
            if self.fail_on is not None and self.fail_on in bodies:
                raise RuntimeError(f"bad row {self.fail_on}")
            out.append(np.array([[len(b), len(prompt)] for b in bodies], dtype=np.float32))
        return out


def scheduler(model: Model, *, batch_size: int = 4, budget: int | None = None, **kwargs) -> Scheduler:  # type: ignore[no-untyped-def]
    return Scheduler(model, limits=lambda: (batch_size, budget, 512), **kwargs)


def submit(s: Scheduler, bodies: list[str], prompt: str = "p", **kwargs):  # type: ignore[no-untyped-def]
    return s.submit([prompt] * len(bodies), bodies, [len(b) for b in bodies], dim=2, **kwargs)


def expected(bodies: list[str], prompt: str = "p") -> np.ndarray:
    return np.array([[len(b), len(prompt)] for b in bodies], dtype=np.float32)


def test_results_come_back_in_row_order() -> None:
    model = Model()
    s = scheduler(model, batch_size=2)
    bodies = ["a" * n for n in (3, 1, 7, 2, 5, 4, 6, 9, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18)]  # bulk: > 16 rows
    np.testing.assert_array_equal(submit(s, bodies).result(timeout=30), expected(bodies))
    assert all(len(bodies) <= 2 for _, bodies in model.passes)
    lengths = [len(b) for _, batch in model.passes for b in batch]
    assert lengths == sorted(lengths, reverse=True)  # planned longest first


def test_small_requests_share_one_pass_and_go_ahead_of_queued_bulk_batches() -> None:
    model = Model(hold=True)
    s = scheduler(model, batch_size=8)
    bulk = submit(s, [f"bulk {i:02d}" for i in range(24)], priority="bulk")  # 3 batches of 8
    assert model.running.wait(timeout=30)  # the first bulk batch holds the model
    queries = [submit(s, [f"q{i}"]) for i in range(5)]
    other = submit(s, ["other prompt"], prompt="x")
    model.gate.set()
    for i, future in enumerate(queries):
        np.testing.assert_array_equal(future.result(timeout=30), expected([f"q{i}"]))
    other.result(timeout=30)
    bulk.result(timeout=30)
    kinds = ["bulk" if batch[0].startswith("bulk") else batch[0] for _, batch in model.passes]
    # One bulk batch was running; then the five queries in one pass, the other prompt's query, the rest.
    assert kinds == ["bulk", "q0", "other prompt", "bulk", "bulk"]
    assert model.passes[1][1] == ["q0", "q1", "q2", "q3", "q4"]


def test_merged_passes_respect_batch_size_and_token_budget() -> None:
    model = Model(hold=True)
    s = scheduler(model, batch_size=3, budget=20)
    blocker = submit(s, ["x"] * 20, priority="bulk")
    assert model.running.wait(timeout=30)
    small = [submit(s, [body]) for body in ["aaaa", "bb", "c", "dddddddddd", "e", "f", "g"]]
    model.gate.set()
    for future in small:
        future.result(timeout=30)
    blocker.result(timeout=30)
    merged = [bodies for _, bodies in model.passes if bodies[0] != "x"]
    # The oldest row, then the nearest in length: 3 rows at most; 3 x 10 > 20 tokens, so 2 rows.
    assert merged == [["aaaa", "bb", "c"], ["dddddddddd", "e"], ["f", "g"]]
    for bodies in merged:
        assert len(bodies) <= 3 and len(bodies) * max(map(len, bodies)) <= 20


def test_a_failed_batch_fails_only_the_requests_in_it() -> None:
    model = Model(hold=True)
    s = scheduler(model, batch_size=4)
    blocker = submit(s, ["ok"] * 20, priority="bulk")
    assert model.running.wait(timeout=30)
    good = submit(s, ["fine"], prompt="other")
    bad = submit(s, ["boom", "x"])
    model.fail_on = "boom"
    model.gate.set()
    with pytest.raises(RuntimeError, match="bad row boom"):
        bad.result(timeout=30)
    np.testing.assert_array_equal(good.result(timeout=30), expected(["fine"], "other"))
    np.testing.assert_array_equal(blocker.result(timeout=30), expected(["ok"] * 20))
    model.fail_on = None
    np.testing.assert_array_equal(submit(s, ["after"]).result(timeout=30), expected(["after"]))  # still serving


def test_cancelled_requests_that_have_not_started_are_dropped() -> None:
    model = Model(hold=True)
    s = scheduler(model)
    blocker = submit(s, ["x"] * 20, priority="bulk")
    assert model.running.wait(timeout=30)
    dropped = submit(s, ["never embedded"])
    assert dropped.cancel()
    model.gate.set()
    blocker.result(timeout=30)
    submit(s, ["later"]).result(timeout=30)
    assert all("never embedded" not in bodies for _, bodies in model.passes)
    with pytest.raises(CancelledError):
        dropped.result()


async def test_an_awaiting_task_cancelled_drops_its_rows() -> None:
    model = Model(hold=True)
    s = scheduler(model)
    blocker = submit(s, ["x"] * 20, priority="bulk")
    assert await asyncio.to_thread(model.running.wait, 30)
    source = submit(s, ["cancelled query"])
    task = asyncio.ensure_future(asyncio.wrap_future(source))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the cancellation reaches the queued request on the loop's next turns
        if source.cancelled():
            break
        await asyncio.sleep(0)
    assert source.cancelled()
    model.gate.set()
    await asyncio.wrap_future(blocker)
    await asyncio.wrap_future(submit(s, ["later"]))
    assert all("cancelled query" not in bodies for _, bodies in model.passes)


def test_close_fails_queued_requests_and_the_running_batch_completes() -> None:
    model = Model(hold=True)
    s = scheduler(model, batch_size=4)
    running = submit(s, ["r"] * 4)  # one pass, running
    assert model.running.wait(timeout=30)
    queued = submit(s, ["q"] * 20, priority="bulk")
    closer = threading.Thread(target=s.close)
    closer.start()
    with pytest.raises(EncoderClosedError, match="closed before this request's rows were embedded"):
        queued.result(timeout=30)
    model.gate.set()
    closer.join(timeout=30)
    np.testing.assert_array_equal(running.result(timeout=30), expected(["r"] * 4))
    # Still usable afterwards: a new request starts a new thread.
    np.testing.assert_array_equal(submit(s, ["again"]).result(timeout=30), expected(["again"]))


def test_the_thread_stops_when_idle_and_restarts() -> None:
    idle: list[int] = []
    s = scheduler(Model(), on_idle=lambda: idle.append(1), idle_seconds=0.05)
    submit(s, ["a"]).result(timeout=30)
    deadline = threading.Event()
    for _ in range(200):
        if s._thread is None:
            break
        deadline.wait(0.01)
    assert s._thread is None and idle == [1]  # one call per drain
    submit(s, ["b"]).result(timeout=30)


def test_finish_errors_reach_the_caller_and_bad_priorities_are_named() -> None:
    s = scheduler(Model())

    def refuse(out: np.ndarray) -> np.ndarray:
        raise ValueError("not finite")

    with pytest.raises(ValueError, match="not finite"):
        submit(s, ["a"], finish=refuse).result(timeout=30)
    with pytest.raises(ValueError, match="priority must be one of 'auto', 'interactive', 'bulk', got 'urgent'"):
        submit(s, ["a"], priority="urgent")
    assert submit(s, []).result(timeout=1).shape == (0, 2)


def test_sixteen_threads_of_mixed_calls_get_their_own_rows() -> None:
    model = Model()
    s = scheduler(model, batch_size=5, budget=60)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(30):
                n = int(rng.integers(1, 40))
                prompt = ["p", "qq", ""][int(rng.integers(0, 3))]
                bodies = ["z" * int(rng.integers(0, 30)) for _ in range(n)]
                np.testing.assert_array_equal(submit(s, bodies, prompt).result(timeout=60), expected(bodies, prompt))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:1]


def test_a_waiting_row_is_taken_within_the_merge_window() -> None:
    """A short row is not starved by longer rows that arrive after it: the oldest row goes first."""
    from instructor_integrations._engine.scheduler import MERGE_WINDOW

    model = Model(hold=True)
    s = scheduler(model, batch_size=2)
    blocker = submit(s, ["x"] * 20, priority="bulk")
    assert model.running.wait(timeout=30)
    short = submit(s, ["s"])
    longer = [submit(s, ["l" * (10 + i)]) for i in range(4 * MERGE_WINDOW)]
    model.gate.set()
    short.result(timeout=30)
    for future in longer:
        future.result(timeout=30)
    blocker.result(timeout=30)
    merged = [bodies for _, bodies in model.passes if bodies[0] != "x"]
    position = next(i for i, bodies in enumerate(merged) if "s" in bodies)
    assert position == 0  # the oldest row goes first, however many longer rows arrive after it
    assert merged[0] == ["s", "l" * 10]  # and the row nearest to it in length


def test_a_forked_child_gets_its_own_queue_and_thread() -> None:
    import multiprocessing

    s = scheduler(Model())
    submit(s, ["parent"]).result(timeout=30)  # the parent has (or had) a thread
    s._thread = threading.Thread(target=lambda: None)  # as if the parent's thread were still running

    def child(queue) -> None:  # type: ignore[no-untyped-def]
        queue.put(submit(s, ["child"]).result(timeout=30).tolist())

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    got = queue.get(timeout=60)
    process.join(timeout=60)
    assert got == [[5.0, 1.0]] and process.exitcode == 0


class ThreadRecorder(Model):
    """A stand-in model that records the thread each pass ran in."""

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.threads: list[str] = []

    def __call__(self, calls):  # type: ignore[no-untyped-def]
        self.threads.append(threading.current_thread().name)
        return super().__call__(calls)


def test_a_blocking_caller_with_no_worker_runs_its_passes_itself() -> None:
    model = ThreadRecorder()
    s = scheduler(model, batch_size=2)
    bodies = [f"row {i}" * (i + 1) for i in range(20)]
    future = submit(s, bodies, drive=True)
    assert s._thread is None  # no worker thread was woken
    s.drive(future)
    assert future.done()
    np.testing.assert_array_equal(future.result(), expected(bodies))
    assert set(model.threads) == {threading.current_thread().name} and len(model.threads) == 10


def test_a_driver_runs_others_rows_in_turn_and_hands_what_is_left_to_the_worker() -> None:
    model = ThreadRecorder(hold=True)
    s = scheduler(model, batch_size=2)
    mine = [f"mine {i}" * 3 for i in range(20)]
    future = submit(s, mine, drive=True)
    driver = threading.Thread(target=s.drive, args=(future,), name="driver")
    # The claim belongs to the thread that submitted: another thread's drive() does nothing.
    driver.start()
    driver.join(timeout=5)
    assert not future.done() and s._driver is threading.current_thread()
    others: list = []
    helper = threading.Thread(target=lambda: others.append(submit(s, [f"other {i}" for i in range(30)])))
    helper.start()
    helper.join(timeout=5)
    assert s._thread is None  # a driver is active: no worker thread for the newcomer
    model.gate.set()
    s.drive(future)
    np.testing.assert_array_equal(future.result(timeout=5), expected(mine))
    rest = others[0].result(timeout=30)  # finished by the driver or, for what was left, the worker thread
    np.testing.assert_array_equal(rest, expected([f"other {i}" for i in range(30)]))
    assert threading.current_thread().name in model.threads
    assert s._driver is None


@pytest.mark.parametrize("announce", [True, False], ids=["announced", "not announced"])
def test_an_announced_query_is_waited_for_by_the_next_bulk_batch(announce: bool) -> None:
    """A query whose rows are still being prepared when the running bulk batch ends goes next if announced.

    Without the announcement the worker starts the next bulk batch at once and the query waits for it too
    (the control case, which shows the test can fail)."""
    import time

    first_running, release = threading.Event(), threading.Event()
    passes: list[str] = []

    def execute(calls: list[tuple[str, list[str]]]) -> list[np.ndarray]:
        passes.extend(bodies[0] for _, bodies in calls)
        if len(passes) == 1:
            first_running.set()
            assert release.wait(timeout=30)
        return [np.zeros((len(bodies), 2), dtype=np.float32) for _, bodies in calls]

    s = Scheduler(execute, limits=lambda: (4, None, 512))
    bulk = submit(s, [f"bulk {i:02d}" for i in range(24)], priority="bulk")
    assert first_running.wait(timeout=30)
    with s.announcing(announce):
        release.set()
        time.sleep(0.03)  # counting the query's tokens takes a moment
        query = submit(s, ["query"])
    query.result(timeout=30)
    bulk.result(timeout=30)
    position = passes.index("query")
    assert position == 1 if announce else position >= 2, passes


def test_an_announcement_delays_bulk_batches_boundedly_and_is_withdrawn_on_error() -> None:
    from instructor_integrations._engine.scheduler import ANNOUNCE_WAIT

    model = Model()
    s = scheduler(model, batch_size=8)
    with s.announcing():  # a query that takes long to prepare: bulk work still goes on, a little slower
        bulk = submit(s, [f"bulk {i:02d}" for i in range(24)], priority="bulk")
        np.testing.assert_array_equal(
            bulk.result(timeout=30 * ANNOUNCE_WAIT), expected([f"bulk {i:02d}" for i in range(24)])
        )
    with pytest.raises(ValueError, match="bad text"), s.announcing():
        raise ValueError("bad text")
    assert s._announced == 0
