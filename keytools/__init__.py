"""keytools: the command line for DataFold client keys (``keytools --help``).

Commands are modules in :mod:`keytools.commands`; what they share (store,
key-name and passphrase options, :func:`load_signing_key`) is in
:mod:`keytools.common`.
"""

from .common import KeytoolsError, UsageError, add_key_arguments, load_signing_key

__all__ = ["KeytoolsError", "UsageError", "add_key_arguments", "load_signing_key"]
