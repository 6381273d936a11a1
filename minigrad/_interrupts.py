"""Ctrl-C that waits for the end of a step.

KeyboardInterrupt can arrive between any two bytecodes. In the middle of an optimizer step it
would leave some parameters updated and others not (or Adam's step counts advanced without
their update), and in the middle of switching a model between train and eval mode it would
leave half of the layers in the wrong mode. ``fit`` runs those parts as critical sections:
a Ctrl-C that arrives inside one is held until the section ends, then raised.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any


class DeferredInterrupts:
    """A SIGINT handler, installed for a ``with`` block, that holds Ctrl-C inside
    ``critical()`` sections and passes it on at their end.

    Outside a critical section the previous handler runs at once (normally Python's, which
    raises KeyboardInterrupt). Installed only in the main thread and only over a Python-level
    handler; elsewhere it does nothing and Ctrl-C behaves as usual.
    """

    def __init__(self) -> None:
        self._previous: Any = None
        self._depth = 0
        self._pending: tuple[int, FrameType | None] | None = None

    def __enter__(self) -> DeferredInterrupts:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._depth:
            self._pending = (signum, frame)
        else:
            self._previous(signum, frame)

    def begin(self) -> None:
        """Enter a critical section (sections nest)."""
        self._depth += 1

    def end(self) -> None:
        """Leave a critical section; a Ctrl-C held during it is raised now."""
        self._depth -= 1
        if self._depth == 0 and self._pending is not None:
            pending, self._pending = self._pending, None
            handler = self._previous or signal.default_int_handler
            handler(*pending)
