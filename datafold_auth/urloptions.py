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
from urllib.parse import SplitResult, parse_qsl, unquote_plus, urlsplit

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


def split_query_url(url: str, *, what: str) -> tuple[SplitResult, list[tuple[str, str]]]:
    """``(urlsplit(url), its query as (name, value) pairs)``, or a fixed message that quotes nothing.

    A ``?``, ``#`` or ``/`` left unescaped in a password ends the user information early: the rest of
    the password then reads as the path, the query or the fragment (``redis://:ab?cd&ef@host/0`` has
    the "options" ``cd`` and ``ef@host/0``). An ``@`` there, in the path, in an option name or in
    the fragment, is taken as that mistake, and the message names no part of the URL.

    Raises:
        ValueError: the URL cannot be split (``urlsplit`` quotes parts of it in its own message; a
            character that is not UTF-8), or the user information holds an unescaped ``?``, ``#`` or ``/``.
    """
    try:
        url.encode("utf-8")
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except (UnicodeEncodeError, ValueError):
        raise ValueError(f"invalid {what} (it cannot be parsed; not shown, it may hold a password)") from None
    if "@" in parts.path or "@" in parts.fragment or any("@" in name for name, _ in pairs):
        raise ValueError(
            f"invalid {what}: percent-encode '?', '#', '/' and '@' in the user name or password "
            "(%3F, %23, %2F, %40); not shown, it may hold a password"
        )
    return parts, pairs


def redacted(url: str) -> str:
    """``url`` for a message: the password of its user information and the values of
    :data:`SECRET_OPTIONS` written ``***``; ``"<unreadable URL>"`` if it cannot be split or holds an
    unescaped ``?``, ``#`` or ``/`` in its user information (see :func:`split_query_url`)."""
    try:
        parts, _ = split_query_url(url, what="URL")
    except ValueError:
        return "<unreadable URL>"
    names = [unquote_plus(raw.partition("=")[0]) for raw in parts.query.split("&")]
    if "@" not in parts.netloc and not SECRET_OPTIONS.intersection(names):
        return url  # nothing secret to hide (and "sqlite:keys.db" stays as written)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{host}"
    query = "&".join(
        f"{raw.partition('=')[0]}=***" if unquote_plus(raw.partition("=")[0]) in SECRET_OPTIONS else raw
        for raw in parts.query.split("&")
    )
    text = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else netloc + parts.path
    return text + (f"?{query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")


__all__ = ["NOT_SHOWN", "SECRET_OPTIONS", "option_problem", "redacted", "split_query_url"]
