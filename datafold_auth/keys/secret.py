"""Best-effort handling of secrets held in memory: :class:`SecretBytes` and :func:`wipe`.

What this can and cannot do in Python (read this before relying on it):

* It **can** overwrite with zeros the *mutable* buffers this package controls:
  passphrases read from a file, a descriptor or a prompt are kept in a
  ``bytearray`` and wiped after use; seeds decrypted from a backup are
  decrypted straight into a ``bytearray`` (``update_into``) and wiped once the
  key object is built.
* It **cannot** wipe immutable ``bytes`` or ``str`` objects. Python may copy
  them anywhere (string interning, the small-object allocator, the garbage
  collector moving nothing but also freeing nothing eagerly), and
  ``cryptography`` returns ``bytes`` from ``private_bytes_raw()``, from KDF
  ``derive()`` and from one-shot ciphers. A passphrase typed at a prompt
  arrives as ``str`` from :func:`getpass.getpass`; Unicode NFC normalization
  makes more copies. Those copies live until the interpreter reuses their memory.
* Inside ``cryptography`` the key lives in OpenSSL memory, which OpenSSL
  clears when the key object is freed.
* Nothing here stops the OS from swapping pages to disk or writing a core
  dump; use an encrypted swap and disable core dumps (``ulimit -c 0``) on
  machines that hold valuable keys.

So zeroization here shortens the life of *some* copies; it is no guarantee
that no copy of a secret remains in the process.
"""

from __future__ import annotations

from types import TracebackType


def wipe(buffer: bytearray | memoryview) -> None:
    """Overwrite a mutable buffer with zero bytes, in place.

    Args:
        buffer: a ``bytearray`` or a writable ``memoryview``; its length is kept.

    Raises:
        TypeError: ``buffer`` is read-only (for example a view of ``bytes``).
    """
    view = memoryview(buffer).cast("B")
    if view.readonly:
        raise TypeError("cannot wipe a read-only buffer")
    view[:] = bytes(len(view))


class SecretBytes:
    """A secret in a ``bytearray`` that is wiped on :meth:`wipe` or when leaving a ``with`` block.

    Its ``repr`` and ``str`` show only the length, so a secret that reaches a log
    or an exception message by accident shows as ``<SecretBytes: 32 bytes>``.
    It is not hashable and compares only by identity, so it never lands in a
    dict key or set by accident.

    Args:
        data: the secret's bytes (copied into a new ``bytearray``; wipe the
            source yourself if it is mutable).
    """

    __slots__ = ("_buffer",)

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self._buffer = bytearray(data)

    @property
    def buffer(self) -> bytearray:
        """The live buffer (bytes-like; pass it to ``cryptography`` without copying)."""
        return self._buffer

    def __len__(self) -> int:
        return len(self._buffer)

    def __bool__(self) -> bool:
        return bool(self._buffer)

    def __repr__(self) -> str:
        return f"<SecretBytes: {len(self._buffer)} bytes>"

    __str__ = __repr__
    __hash__ = None  # type: ignore[assignment]

    def wipe(self) -> None:
        """Zero the buffer and empty it."""
        wipe(self._buffer)
        self._buffer.clear()

    def __enter__(self) -> SecretBytes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.wipe()


__all__ = ["SecretBytes", "wipe"]
