"""Fuzz target: paper backups (BIP39 words, numbered or bare, with a document header).

Checks that :func:`detect_backup`, :func:`restore_backup` (format ``paper``) and
:func:`read_document_info` return or raise typed errors.
"""

from __future__ import annotations

from _backups import paper_seeds
from _harness import NOW, typed

from datafold_auth.keys import detect_backup, restore_backup
from datafold_auth.keys.paper import read_document_info


def seeds() -> list[bytes]:
    return paper_seeds()


def test_one_input(data: bytes) -> None:
    typed(detect_backup, data)
    typed(restore_backup, [data], None, fmt="paper")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    typed(read_document_info, text, now=NOW)
