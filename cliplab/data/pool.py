"""Decode threads with a per-file time limit (`CLIPLAB_DECODE_TIMEOUT`).

A decoder stuck in C code (a hostile HEIC, a RAW that LibRaw loops on) cannot be stopped from
Python: a thread cannot be killed, and PIL/libheif/LibRaw offer no cancel. So the limit is enforced
where it can be: the caller stops *waiting* for the file once it has decoded for longer than the
limit, records it as failed, and a new thread takes the stuck one's place, so the run keeps its
full speed and ends. The stuck thread is a daemon: it finishes (or hangs) on its own and never
keeps the process from exiting. What this does not bound: the CPU and memory the stuck thread goes
on using until it returns (the pixel limit, checked from the header before decoding, bounds the
memory of every well-formed file); only a separate process could.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable


class DecodeTimeout(Exception):
    """A job ran past the time limit; its thread was left to finish on its own."""


class Job:
    __slots__ = ("fn", "args", "started", "done", "start", "result", "error", "abandoned")

    def __init__(self, fn: Callable, args: tuple):
        self.fn, self.args = fn, args
        self.started, self.done = threading.Event(), threading.Event()
        self.start = 0.0
        self.result: Any = None
        self.error: BaseException | None = None
        self.abandoned = False


class DecodePool:
    """`workers` daemon threads running jobs in submission order; `result(job)` waits at most
    `timeout` seconds from the moment the job started."""

    def __init__(self, workers: int, timeout: float):
        self.workers, self.timeout = workers, timeout
        self.timed_out = 0  # jobs abandoned so far
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(workers):
            self._spawn()

    def _spawn(self) -> None:
        threading.Thread(target=self._work, name="cliplab-decode", daemon=True).start()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._closed:  # the run is over (or interrupted): skip what is still queued
                job.done.set()
                continue
            job.start = time.monotonic()
            job.started.set()
            try:
                job.result = job.fn(*job.args)
            except BaseException as e:  # noqa: BLE001 handed to the waiting caller
                job.error = e
            with self._lock:
                job.done.set()
                if job.abandoned:  # a new thread has taken this one's place
                    return

    def submit(self, fn: Callable, *args) -> Job:
        job = Job(fn, args)
        self._queue.put(job)
        return job

    def result(self, job: Job):
        """The job's return value (or its exception); DecodeTimeout when it has run longer than the limit."""
        job.started.wait()  # a queued job always starts: stuck threads are replaced
        if not job.done.wait(max(0.0, job.start + self.timeout - time.monotonic())):
            with self._lock:
                if not job.done.is_set():
                    job.abandoned = True
                    self.timed_out += 1
                    self._spawn()
                    raise DecodeTimeout(f"over {self.timeout:g} s")
        if job.error is not None:
            raise job.error
        return job.result

    def close(self) -> None:
        """Stop the threads once they finish their current job; jobs still queued are not run."""
        self._closed = True
        for _ in range(self.workers):
            self._queue.put(None)

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
