"""docs/troubleshooting.md names every message a user can see, collected from the source.

A new reason code, keytools message, key-store message, shell ``die``
message or browser error code that is not in the page fails this test:

* ``Reason`` codes (``datafold_auth.errors``), as `` `code` ``;
* keytools and key-management messages: the first argument of every
  ``raise <UserFacingError>("...")`` (string or f-string) in ``keytools/`` and
  ``datafold_auth/keys/``; f-string fields are written ``<name>`` in the page;
* shell messages: every ``df_die``/``df_fail``/``df_usage_error "..."`` and the
  ``datafold-lib.sh not found`` line of ``keytools/openssl/``; ``$var`` and
  ``$(...)`` are written ``<name>`` in the page;
* browser: every ``reason`` the module throws (``new DatafoldAuthError("code", ...)``,
  ``StructuredFieldError``, ``http_error``), and every message literal of those
  errors (and of ``badBackup``, reason ``invalid_backup``), except the structured-field parser's (one row: ``structured_field``).

Messages are matched inside the page's code spans, with ``<...>`` standing for
the variable parts; the page is split in sections, and each surface's messages
must be in its own section.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import datafold_auth as df

from .conftest import ROOT

DOC = ROOT / "docs" / "troubleshooting.md"

USER_FACING = {
    "KeytoolsError",
    "UsageError",
    "VerificationFailed",
    "KeyFormatError",
    "KeyStoreError",
    "KeyNotFoundError",
    "KeyExistsError",
    "WrongPassphraseError",
    "ArgumentTypeError",
}
"""Exceptions whose message reaches the user (``keytools: error: <message>``, or ``exc.detail`` in Python)."""

HOLE = "\x00"
"""Stands for a variable part of a message template."""


@dataclass(frozen=True)
class Message:
    """One message template: the source it comes from and its text with :data:`HOLE` for variable parts."""

    where: str
    template: str

    def pattern(self) -> re.Pattern[str]:
        """A regex for the documented form: the literal parts as they are, any text (``<name>``) for each hole."""
        parts = [re.escape(" ".join(part.split())) for part in self.template.split(HOLE)]
        return re.compile(".*?".join(parts))

    @property
    def passes_through(self) -> bool:
        """Only holes and punctuation (e.g. ``f"{what}: {detail}"``): the text is another message, documented there."""
        return not re.search(r"[A-Za-z]{2}", self.template.replace(HOLE, " "))

    @property
    def shown(self) -> str:
        return self.template.replace(HOLE, "<...>")


# --------------------------------------------------------------------------- collectors


def _template(node: ast.expr) -> str | None:
    """The text of a string or f-string node with holes, or None for anything else (a pass-through)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                out.append(value.value)
            else:
                out.append(HOLE)
        return "".join(out)
    return None


def _exception_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def python_messages(folder: Path) -> list[Message]:
    """Every ``raise <USER_FACING>(<literal or f-string>)`` under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
                continue
            if _exception_name(node.exc.func) not in USER_FACING:
                continue
            text = _template(node.exc.args[0])
            if text is not None:
                found.append(Message(f"{path.relative_to(ROOT)}:{node.lineno}", text))
    return found


def _shell_string(source: str, start: int) -> tuple[str, int]:
    """The double-quoted shell string opening at ``source[start]``, with holes for expansions; and its end."""
    assert source[start] == '"'
    out: list[str] = []
    i = start + 1
    while True:
        c = source[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            out.append(source[i + 1])
            i += 2
        elif source.startswith('$(df_refused "', i):
            # df_refused WHAT prints "WHAT: HTTP <status> <reason>"
            what, i = _shell_string(source, i + len("$(df_refused "))
            assert source[i] == ")"
            out.append(f"{what}: HTTP {HOLE} {HOLE}")
            i += 1
        elif source.startswith("$(", i):
            depth, i, quote = 1, i + 2, False
            while depth:
                if source[i] == '"':
                    quote = not quote
                elif not quote and source[i] == "(":
                    depth += 1
                elif not quote and source[i] == ")":
                    depth -= 1
                i += 1
            out.append(HOLE)
        elif source.startswith("${", i):
            i = source.index("}", i) + 1
            out.append(HOLE)
        elif c == "$" and re.match(r"[A-Za-z_0-9]", source[i + 1]):
            i = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|[0-9]").match(source, i + 1).end()  # type: ignore[union-attr]
            out.append(HOLE)
        else:
            out.append(c)
            i += 1


SHELL_CALL = re.compile(
    r'\b(?:df_die|df_usage_error|df_fail [0-9]+) (?=")|printf \'%s: error: %s\\n\' "\$DF_PROG" (?=")'
)


def shell_messages() -> list[Message]:
    """Every error message of the OpenSSL scripts."""
    found = []
    for path in sorted((ROOT / "keytools" / "openssl").iterdir()):
        source = path.read_text()
        for match in SHELL_CALL.finditer(source):
            if source[: match.start()].rsplit("\n", 1)[-1].lstrip().startswith("#"):
                continue  # a comment
            line = source.count("\n", 0, match.start()) + 1
            found.append(Message(f"{path.relative_to(ROOT)}:{line}", _shell_string(source, match.end())[0]))
    return found


JS = ROOT / "browser" / "datafold-auth.js"
JS_LITERAL = r'("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`(?:[^`\\]|\\.)*`)'
JS_ERROR = re.compile(r'new DatafoldAuthError\(\s*"([a-z_]+)"(?:,\s*' + JS_LITERAL + ")?")
JS_BAD_BACKUP = re.compile(r"badBackup\(\s*" + JS_LITERAL)
"""``badBackup(message)`` throws reason ``invalid_backup`` with that message."""


def js_reasons() -> set[str]:
    """Every reason code the browser module throws."""
    source = JS.read_text()
    reasons = {m.group(1) for m in JS_ERROR.finditer(source)}
    assert "class StructuredFieldError" in source and '"http_error"' in source
    return reasons | {"structured_field", "http_error"}


def js_messages() -> list[Message]:
    """The literal messages of the browser module's errors (``${...}`` are holes)."""
    source = JS.read_text()
    found = []
    matches = [(m.start(), m.group(2)) for m in JS_ERROR.finditer(source)]
    matches += [(m.start(), m.group(1)) for m in JS_BAD_BACKUP.finditer(source)]
    for start, literal in sorted(matches):
        if literal is None:
            continue
        text = re.sub(r"\$\{[^}]*\}", HOLE, literal[1:-1]) if literal[0] == "`" else literal[1:-1]
        text = re.sub(r"\\(.)", r"\1", text)
        line = source.count("\n", 0, start) + 1
        found.append(Message(f"browser/datafold-auth.js:{line}", text))
    return found


# --------------------------------------------------------------------------- the page


def sections() -> dict[str, str]:
    """The page's ``## `` sections, by title (lowercase)."""
    text = DOC.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {title.strip().lower(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def code_spans(text: str) -> list[str]:
    """The contents of the inline code spans of ``text``, table escapes (``\\|``) undone, spaces collapsed."""
    return [" ".join(span.replace("\\|", "|").split()) for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text)]


def section(title_start: str) -> str:
    """The one section whose title starts with ``title_start``."""
    found = [body for title, body in sections().items() if title.startswith(title_start)]
    assert len(found) == 1, f"docs/troubleshooting.md needs one section '## {title_start}...'"
    return found[0]


def undocumented(messages: list[Message], text: str) -> list[str]:
    spans = code_spans(text)
    missing = []
    for message in messages:
        if message.passes_through:
            continue
        pattern = message.pattern()
        if not any(pattern.fullmatch(" ".join(span.split())) for span in spans):
            missing.append(f"{message.where}: {message.shown}")
    return missing


# --------------------------------------------------------------------------- tests


def test_collectors_find_the_messages() -> None:
    """The collectors see what they are meant to (a broken collector would make every other test pass)."""
    keytools = python_messages(ROOT / "keytools")
    keys = python_messages(ROOT / "datafold_auth" / "keys")
    shell = shell_messages()
    assert len(keytools) >= 40 and len(keys) >= 80 and len(shell) >= 100 and len(js_messages()) >= 40
    assert any(m.template == "the passphrases do not match" for m in keytools)
    assert any(m.template == f"wrong passphrase for {HOLE} (or the encrypted key is damaged)" for m in keys)
    assert any(m.template == f"key file {HOLE} does not exist" for m in shell)
    assert any("$DATAFOLD_AUTH_PASSPHRASE" in m.template for m in shell)
    assert {"wrong_passphrase", "unsupported_backup", "key_locked", "structured_field"} <= js_reasons()


def test_the_matcher_needs_the_literal_text() -> None:
    message = Message("x", f"key {HOLE} already exists ({HOLE}); use --force to replace it")
    assert undocumented([message], "| `key <name> already exists (<path>); use --force to replace it` |") == []
    assert undocumented([message], "| `key <name> already exists (<path>); use --force` |") != []
    assert undocumented([message], "key <name> already exists (<path>); use --force to replace it") != []


def test_every_reason_code() -> None:
    text = DOC.read_text()
    missing = [reason.value for reason in df.Reason if f"`{reason.value}`" not in text]
    assert missing == []


@pytest.mark.parametrize(
    ("title", "folder"), [("keytools", "keytools"), ("local keys", "datafold_auth/keys")], ids=["keytools", "keys"]
)
def test_every_python_message(title: str, folder: str) -> None:
    missing = undocumented(python_messages(ROOT / folder), section(title))
    assert missing == [], f"{len(missing)} messages missing in docs/troubleshooting.md:\n" + "\n".join(missing)


def test_every_shell_message() -> None:
    missing = undocumented(shell_messages(), section("shell scripts"))
    assert missing == [], f"{len(missing)} messages missing in docs/troubleshooting.md:\n" + "\n".join(missing)


def test_every_browser_reason_and_message() -> None:
    text = section("browser")
    missing_codes = sorted(code for code in js_reasons() if f"`{code}`" not in text)
    assert missing_codes == []
    missing = undocumented(js_messages(), text)
    assert missing == [], f"{len(missing)} messages missing in docs/troubleshooting.md:\n" + "\n".join(missing)
