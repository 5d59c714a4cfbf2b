"""A controllable clock for tests of expiry and clock skew without patching ``time``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class FakeClock:
    """A clock that stands still until told to move.

    Call it (``clock()``) or read :attr:`now` to get the time in epoch seconds.
    It fits wherever this package takes a clock: the middleware's ``clock=``,
    :class:`~datafold_auth.registration.RegistrationService`'s ``clock=``, the
    client signers' ``clock=``; and ``Signer.sign(now=clock())``.

    Args:
        start: the initial time in epoch seconds (default: the real time when
            the clock is made, rounded down to a whole second, so that
            signatures made with it are also valid for a server on the real clock).

    Raises:
        ValueError: ``start`` is not a finite number.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float | None = None) -> None:
        self._now = 0.0
        self.set(math.floor(time.time()) if start is None else start)

    @property
    def now(self) -> float:
        """The current fake time in epoch seconds."""
        return self._now

    def __call__(self) -> float:
        """The current fake time in epoch seconds (so the clock is a ``Callable[[], float]``)."""
        return self._now

    def set(self, epoch: float) -> None:
        """Jump to ``epoch`` (epoch seconds; earlier than now is allowed).

        Raises:
            ValueError: ``epoch`` is not a finite number.
        """
        value = float(epoch)
        if not math.isfinite(value):
            raise ValueError("the clock needs a finite time")
        self._now = value

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward (negative: backward) and return the new time (epoch seconds).

        Raises:
            ValueError: ``seconds`` is not a finite number.
        """
        self.set(self._now + float(seconds))
        return self._now

    def shifted(self, seconds: float) -> Callable[[], float]:
        """A clock that always reads ``seconds`` ahead of this one (behind when negative).

        It follows this clock as it moves. Give it to a signing client to sign
        as a client whose clock is off, e.g. ``clock.shifted(-400)`` signs
        requests that a server on this clock refuses as ``expired``.
        """
        offset = float(seconds)
        if not math.isfinite(offset):
            raise ValueError("the shift must be a finite number of seconds")
        return lambda: self._now + offset

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"


__all__ = ["FakeClock"]
