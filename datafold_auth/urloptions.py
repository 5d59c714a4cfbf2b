"""Checking the query options of a backend URL (``redis://...?prefix=``, ``postgresql://...?schema=``).

A misspelt option must not pass silently: redis-py hands unknown options to its connection class
(every connection then fails with a ``TypeError``) and libpq refuses them only when it connects
(after a pool timeout). :func:`option_problem` names the first unknown or repeated option, with the
closest known name, so that ``open_nonce_store`` / ``open_registry`` refuse the URL at start-up
(reason ``invalid_configuration``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Set

_OPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
"""What a misspelt option name may look like."""

SECRET_OPTIONS = frozenset({"password", "ssl_password", "sslpassword"})
"""Options whose value is a secret: an unescaped ``&`` in it makes its tail look like more options."""

NOT_SHOWN = "(its name is not shown: it may be part of a password)"


def option_problem(names: Iterable[str], known: Set[str], *, what: str) -> str | None:
    """The message for the first of ``names`` (a URL's query option names, in order) that is not in
    ``known`` or is given twice; ``None`` if there is none.

    Never a value (it may be a password), and an unknown name only when it is a likely misspelling:
    shaped like an option name, with a close known name (case ignored), and not after a
    :data:`SECRET_OPTIONS` option (``?password=ab&cd`` makes ``cd`` look like an option), e.g.
    ``unknown Redis URL option 'prefx' (did you mean 'prefix'?)``; else ``unknown Redis URL
    option (its name is not shown: ...)``.

    Args:
        names: the option names, e.g. ``[name for name, _ in parse_qsl(query, keep_blank_values=True)]``.
        known: the option names the URL may carry.
        what: the URL's kind for the message, e.g. ``"Redis URL"``.
    """
    seen: set[str] = set()
    after_secret = False
    lowered = {k.lower(): k for k in known}
    for name in names:
        if name not in known:
            close = None
            if _OPTION_NAME.fullmatch(name) and not after_secret:
                matches = difflib.get_close_matches(name.lower(), sorted(lowered), n=1)
                close = lowered[matches[0]] if matches else None
            if close is None:
                return f"unknown {what} option {NOT_SHOWN}"
            return f"unknown {what} option {name!r} (did you mean {close!r}?)"
        if name in seen:
            return f"{what} option {name!r} is given twice (which one should win?)"
        seen.add(name)
        after_secret = after_secret or name in SECRET_OPTIONS
    return None


__all__ = ["NOT_SHOWN", "SECRET_OPTIONS", "option_problem"]
