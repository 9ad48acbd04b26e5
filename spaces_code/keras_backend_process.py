r"""Keras：Tensorflow的黄金标准 — https://kexue.fm/archives/7055

A second Keras backend in a process forked from this one before this one imports Keras.

Keras fixes its backend when it is first imported (``KERAS_BACKEND``), so one process cannot run the
same model on two backends. :func:`spaces_code.keras_portable.logits_under_backend` starts a new
Python interpreter for the second backend, which imports PyTorch and NumPy all over again.
:class:`BackendProcess` forks this process instead, *before* it imports Keras: the child inherits the
backend-independent libraries already imported (PyTorch, NumPy), imports Keras on its own backend
while the parent goes on (trains its model), and then answers the same requests as the interpreter
would (:func:`spaces_code.keras_portable.backend_answers`: build the model from the same code, load
the weights, compute the logits) over a pipe. Keras itself is imported fresh in the child, so the
model code meets the other backend exactly as in a new interpreter.

This module imports neither Keras nor :mod:`spaces_code.keras_portable` (which does) until the child
runs.
"""
from __future__ import annotations

import multiprocessing
import os
import sys

import numpy as np


class BackendProcess:
    """A forked process with Keras on ``backend`` (JAX runs on CPU: ``JAX_PLATFORMS=cpu``).

    Create it before this process imports Keras (otherwise ``RuntimeError``): the fork copies the
    process, and a Keras imported already would keep its backend in the child. The child's stdout and
    stderr go to ``/dev/null`` (what a library prints there must not interleave with the parent's
    output); its answers and errors come back on the pipe. Call :meth:`close` when done (it is also a
    context manager; a daemon process, it never outlives the parent).
    """

    def __init__(self, backend: str, timeout: float = 300.0):
        if "keras" in sys.modules:
            raise RuntimeError("create the BackendProcess before importing keras: the fork would inherit "
                               f"Keras' backend {sys.modules['keras'].backend.backend()!r}")
        context = multiprocessing.get_context("fork")
        self.backend, self.timeout = backend, timeout
        self._connection, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(backend, child_end, self._connection), daemon=True)
        self._process.start()
        child_end.close()

    def logits(self, config, weights: list[np.ndarray], tokens: np.ndarray,
               variants: tuple[bool, ...] = (False,)) -> list:
        """What :func:`~spaces_code.keras_portable.logits_under_backend` returns, computed in this process:
        per ``clever`` flag of ``variants``, the logits ``(batch, classes)`` or a ``BackendPortError``."""
        from spaces_code.keras_portable import BackendPortError

        self._connection.send((config, [np.asarray(w) for w in weights], np.asarray(tokens, dtype=np.int32),
                               tuple(variants)))
        if not self._connection.poll(self.timeout):
            raise BackendPortError(f"{self.backend} process: no answer in {self.timeout:g} s")
        try:
            status, answers = self._connection.recv()
        except EOFError:
            self._process.join(1.0)
            raise BackendPortError(f"{self.backend} process died (exit code {self._process.exitcode})") from None
        if status != "ok":
            raise BackendPortError(f"{self.backend} process failed: {answers}")
        return [out if kind == "ok" else BackendPortError(f"{self.backend} backend: {out}") for kind, out in answers]

    def close(self) -> None:
        self._connection.close()  # the child's recv() ends with EOFError: it returns
        self._process.join(5.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def __enter__(self) -> BackendProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _serve(backend: str, connection, parent_end) -> None:
    """The child: import Keras on ``backend`` now, then answer requests until the pipe closes."""
    parent_end.close()  # the fork copied the parent's end: the pipe closes only once both copies are
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.environ.update(KERAS_BACKEND=backend, JAX_PLATFORMS="cpu")
    os.environ.pop("KERAS_TORCH_DEVICE", None)
    # A two-layer model: XLA's compile time dominates a JAX run, and optimisation level 0 halves it.
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
    try:
        from spaces_code.keras_portable import backend_answers
    except BaseException as error:  # noqa: BLE001 - reported to the parent on the pipe
        connection.send(("error", f"{type(error).__name__}: {error}"))
        os._exit(1)
    while True:
        try:
            request = connection.recv()
        except EOFError:
            # os._exit: no exit handlers inherited from the parent, no wait for JAX's threads to stop
            os._exit(0)
        connection.send(("ok", backend_answers(*request)))
