"""Shell text split into simple commands, so the safety screen can see what each one does.

This is a reader, not a shell: it knows quotes, backslashes, comments, the control operators,
redirections (with their targets), here-documents (skipped), and command substitutions
``$(...)`` and backquotes, whose inner text it splits as well (those commands run too). It
does not expand anything: ``$HOME`` stays ``$HOME``. Text it cannot read (an unclosed quote
or parenthesis) raises :class:`ShellSyntaxError`, and the screen treats that as a hazard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provarmor.model.errors import ProvArmorError

_BLANKS = " \t\r"
_OPERATOR_START = ";&|()<>"
_OPERATORS = (
    "<<<",
    "<<-",
    "&>>",
    ">>",
    ">|",
    ">&",
    "<&",
    "<<",
    "<>",
    "&>",
    "&&",
    "||",
    "|&",
    ";;",
    ";",
    "&",
    "|",
    "(",
    ")",
    "<",
    ">",
)
REDIRECTIONS = frozenset({">", ">>", ">|", "&>", "&>>", "<>", "<", "<<<", ">&", "<&"})
_WRITES = frozenset({">", ">>", ">|", "&>", "&>>", "<>", ">&"})
_HEREDOCS = frozenset({"<<", "<<-"})
_KEYWORDS_SKIPPED = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!", "esac"}
)
_KEYWORDS_WHOLE = frozenset({"for", "case", "select", "function"})
_MAX_DEPTH = 6


class ShellSyntaxError(ProvArmorError):
    """Shell text with an unclosed quote, substitution or parenthesis."""


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    operator: bool = False
    quoted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleCommand:
    """One command: its words (assignments removed) and where its output goes."""

    words: tuple[str, ...]
    assignments: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    """Files its redirections write (``> f``, ``>> f``, ``&> f``)."""

    @property
    def name(self) -> str:
        return self.words[0] if self.words else ""

    @property
    def args(self) -> tuple[str, ...]:
        return self.words[1:]


def _closing_quote(text: str, start: int, quote: str) -> int:
    """Index of the quote closing the one at ``start``."""
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and quote != "'":
            index += 2
            continue
        if quote == '"' and text.startswith("$(", index):
            index = _closing_paren(text, index + 1) + 1
            continue
        if quote == '"' and char == "`":
            index = _closing_quote(text, index, "`") + 1
            continue
        if char == quote:
            return index
        index += 1
    raise ShellSyntaxError(f"unclosed {quote} quote")


def _closing_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``start`` (quotes inside are skipped)."""
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if char in "'\"`":
            index = _closing_quote(text, index, char) + 1
            continue
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ShellSyntaxError("unclosed $( substitution")


@dataclass(slots=True)
class _Reader:
    text: str
    tokens: list[Token] = field(default_factory=list)
    inner: list[str] = field(default_factory=list)
    """Texts of command substitutions, to be split too."""
    word: list[str] = field(default_factory=list)
    started: bool = False
    quoted: bool = False
    pending_heredocs: list[tuple[str, bool]] = field(default_factory=list)

    def end_word(self) -> None:
        if self.started:
            self.tokens.append(Token("".join(self.word), quoted=self.quoted))
            before = self.tokens[-2] if len(self.tokens) >= 2 else None
            if before is not None and before.operator and before.text in _HEREDOCS:
                self.pending_heredocs.append((self.tokens[-1].text, before.text == "<<-"))
        self.word, self.started, self.quoted = [], False, False

    def add(self, text: str, *, quoted: bool = False) -> None:
        self.word.append(text)
        self.started = True
        self.quoted = self.quoted or quoted

    def substitution(self, index: int) -> int:
        """``$(...)`` or ``$((...))`` at ``index``; returns the index after it."""
        end = _closing_paren(self.text, index + 1)
        self.add(self.text[index : end + 1])
        self.inner.append(self.text[index + 2 : end])
        return end + 1

    def backquote(self, index: int) -> int:
        end = _closing_quote(self.text, index, "`")
        self.add(self.text[index : end + 1])
        self.inner.append(self.text[index + 1 : end].replace("\\`", "`"))
        return end + 1

    def double_quoted(self, index: int) -> int:
        end = _closing_quote(self.text, index, '"')
        body = self.text[index + 1 : end]
        position = 0
        while position < len(body):
            if body.startswith("$(", position):
                close = _closing_paren(body, position + 1)
                self.inner.append(body[position + 2 : close])
                position = close + 1
            elif body[position] == "`":
                close = _closing_quote(body, position, "`")
                self.inner.append(body[position + 1 : close])
                position = close + 1
            else:
                position += 1
        self.add(body.replace('\\"', '"').replace("\\\\", "\\"), quoted=True)
        return end + 1

    def operator(self, index: int) -> int:
        fd = self.started and not self.quoted and "".join(self.word).isdigit()
        if self.text[index] in "<>" and fd:  # ``2>``: a file descriptor, not a word
            self.word, self.started = [], False
        self.end_word()
        for candidate in _OPERATORS:
            if self.text.startswith(candidate, index):
                self.tokens.append(Token(candidate, operator=True))
                return index + len(candidate)
        raise ShellSyntaxError(f"unknown operator at {index}")  # pragma: no cover

    def newline(self, index: int) -> int:
        self.end_word()
        self.tokens.append(Token("\n", operator=True))
        index += 1
        while self.pending_heredocs:
            delimiter, strip = self.pending_heredocs.pop(0)
            index = self._skip_heredoc(index, delimiter, strip=strip)
        return index

    def _skip_heredoc(self, index: int, delimiter: str, *, strip: bool) -> int:
        while index < len(self.text):
            end = self.text.find("\n", index)
            end = len(self.text) if end < 0 else end
            line = self.text[index:end]
            index = end + 1
            if (line.lstrip("\t") if strip else line) == delimiter:
                break
        return index


def _step(reader: _Reader, index: int) -> int:  # noqa: C901  (one branch per character class)
    text = reader.text
    char = text[index]
    if char == "\\":
        if text.startswith("\\\n", index):
            return index + 2
        reader.add(text[index + 1 : index + 2], quoted=True)
        return index + 2
    if char == "'":
        end = _closing_quote(text, index, "'")
        reader.add(text[index + 1 : end], quoted=True)
        return end + 1
    if char == '"':
        return reader.double_quoted(index)
    if char == "`":
        return reader.backquote(index)
    if text.startswith("$(", index):
        return reader.substitution(index)
    if text.startswith("${", index):
        end = text.find("}", index)
        if end < 0:
            raise ShellSyntaxError("unclosed ${")
        reader.add(text[index : end + 1])
        return end + 1
    if char == "#" and not reader.started:
        end = text.find("\n", index)
        return len(text) if end < 0 else end
    if char == "\n":
        return reader.newline(index)
    if char in _BLANKS:
        reader.end_word()
        return index + 1
    if char in _OPERATOR_START:
        return reader.operator(index)
    reader.add(char)
    return index + 1


def tokenize(text: str) -> tuple[list[Token], list[str]]:
    """The tokens of ``text`` and the inner texts of its command substitutions."""
    reader = _Reader(text)
    index = 0
    while index < len(text):
        index = _step(reader, index)
    reader.end_word()
    return reader.tokens, reader.inner


def _is_assignment(word: str) -> bool:
    name, equals, _ = word.partition("=")
    return bool(equals) and name.isidentifier()


def _group(tokens: list[Token]) -> list[SimpleCommand]:
    commands: list[SimpleCommand] = []
    words: list[str] = []
    assignments: list[str] = []
    writes: list[str] = []
    skipping = False
    index = 0

    def flush() -> None:
        if words or writes:
            commands.append(
                SimpleCommand(
                    words=tuple(words), assignments=tuple(assignments), writes=tuple(writes)
                )
            )
        words.clear()
        assignments.clear()
        writes.clear()

    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.operator and token.text in REDIRECTIONS | _HEREDOCS:
            target = tokens[index].text if index < len(tokens) else ""
            index += 1
            duplicate = token.text in (">&", "<&") and (target.isdigit() or target == "-")
            if token.text in _WRITES and target and not duplicate:
                writes.append(target)
            continue
        if token.operator:
            flush()
            skipping = False
            continue
        if skipping:
            continue
        if not words and not token.quoted and token.text in _KEYWORDS_WHOLE:
            skipping = True
            continue
        if not words and not token.quoted and token.text in _KEYWORDS_SKIPPED:
            continue
        if not words and not token.quoted and _is_assignment(token.text):
            assignments.append(token.text)
            continue
        words.append(token.text)
    flush()
    return commands


def split_commands(text: str, *, depth: int = 0) -> list[SimpleCommand]:
    """Every simple command in ``text``, those inside command substitutions included."""
    if depth > _MAX_DEPTH:
        raise ShellSyntaxError("command substitutions nested too deeply")
    tokens, inner = tokenize(text)
    commands = _group(tokens)
    for nested in inner:
        commands.extend(split_commands(nested, depth=depth + 1))
    return commands
