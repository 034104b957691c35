"""The language of what a person reads: choosing it, and the translator that carries it.

`Messages` is an immutable object passed to whatever renders human text (renderers, the
CLI's prompts); there is no process-wide "current language". Its catalog is the gettext
`.mo` compiled from reconciler/locale/<lang>/LC_MESSAGES/lwr.po (`make messages`), read
only when a Japanese message is first asked for, so `lwr --version` never opens it.
Machine output (JSON, saved plans, the audit log) never goes through here.

Message ids are the English text with named `{placeholders}` (str.format); plurals go
through `n_` (gettext's ngettext), so no sentence is assembled from translated parts.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import FileError

Lang = Literal["en", "ja"]
DOMAIN = "lwr"
LOCALE_DIR = Path(__file__).with_name("locale")


def N_(message: str) -> str:  # gettext's name for it; Babel extracts it
    """Mark `message` for extraction where it is defined; it is translated where shown."""
    return message


def choose_lang(option: str | None, environ: Mapping[str, str]) -> Lang:
    """`--lang` wins, then LWR_LANG, then LC_ALL / LC_MESSAGES / LANG (POSIX order: the
    first one set decides), then English. `ja_JP.UTF-8`, `ja` and `ja-JP` read as Japanese;
    any other locale (C, POSIX, en_US, fr_FR) as English."""
    if option:
        return _lang_of(option)
    if environ.get("LWR_LANG"):
        return _lang_of(environ["LWR_LANG"])
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return _lang_of(value)
    return "en"


def _lang_of(value: str) -> Lang:
    code = value.replace("-", "_").split(".")[0].split("_")[0].lower()
    return "ja" if code == "ja" else "en"


@dataclass(frozen=True)
class Messages:
    """The translator for one language: `_` for a message, `n_` for one with a count."""

    lang: Lang = "en"
    locale_dir: Path = field(default=LOCALE_DIR, compare=False)

    @cached_property
    def _catalog(self) -> gettext.NullTranslations:
        if self.lang == "en":
            return gettext.NullTranslations()
        # Not gettext's fallback: a Japanese run without its catalog is a broken install,
        # and quietly answering in English would hide it.
        try:
            return gettext.translation(DOMAIN, self.locale_dir, languages=[self.lang])
        except OSError as e:
            mo = self.locale_dir / self.lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
            raise FileError(
                f"cannot read the {self.lang} messages {mo}: {e.strerror or e}; reinstall lwr "
                "(`pip install .` or `make install` compiles them), or pass --lang en"
            ) from e

    def _(self, message: str, **fields: Any) -> str:
        """`message` in this language, its `{placeholders}` filled from `fields`."""
        text = self._catalog.gettext(message)
        return text.format(**fields) if fields else text

    def n_(self, singular: str, plural: str, n: int, **fields: Any) -> str:
        """The form for count `n` (the catalog's plural rule); `{n}` is the count, so
        `{n:,}` writes it with thousands separators."""
        text = self._catalog.ngettext(singular, plural, n)
        return text.format(**{"n": n, **fields})


ENGLISH = Messages()


@dataclass(frozen=True)
class Msg:
    """A message not yet in a language: what the planner keeps beside the English text it
    records (a side effect's `text`), so each renderer can say it in its reader's language.
    A field whose value is a Msg is said in the same language."""

    singular: str
    plural: str | None = None
    n: int | None = None
    fields: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, message: str, **fields: Any) -> Msg:
        """`Msg.of("… {who} …", who=…)`."""
        return cls(message, fields=tuple(fields.items()))

    @classmethod
    def counted(cls, singular: str, plural: str, n: int, **fields: Any) -> Msg:
        """`Msg.counted("{n} open room", "{n} open rooms", rooms)`: the form for `n`."""
        return cls(singular, plural, n, tuple(fields.items()))

    def say(self, t: Messages) -> str:
        """The message in `t`'s language."""
        # A Said or Told field (a reason worded elsewhere) is said again too.
        fields = {k: v.say(t) if isinstance(v, Msg) else _said(v, t) for k, v in self.fields}
        if self.plural is not None and self.n is not None:
            return t.n_(self.singular, self.plural, self.n, **fields)
        return t._(self.singular, **fields)


class Said(str):
    """English text that keeps the message it was said from: a plan's warnings are strings
    in JSON and saved plans, and a renderer says them again in its reader's language. Read
    back from a file, a warning is a plain str (English)."""

    msg: Msg

    def __new__(cls, msg: Msg) -> Said:
        said = super().__new__(cls, msg.say(ENGLISH))
        said.msg = msg
        return said

    def __reduce__(self) -> tuple[type[Said], tuple[Msg]]:
        return (Said, (self.msg,))

    @classmethod
    def of(cls, message: str, **fields: Any) -> Said:
        """`Said.of("… {who} …", who=…)`: English now, and again in any language."""
        return cls(Msg.of(message, **fields))

    @classmethod
    def counted(cls, singular: str, plural: str, n: int, **fields: Any) -> Said:
        """`Said.counted("{n} member", "{n} members", n)`."""
        return cls(Msg.counted(singular, plural, n, **fields))


class Told(str):
    """English text written by `write`, which writes it again in any language: for a
    message of several lines or parts (a refusal with its list), where one Msg would not do.
    The text of an error's `str()`, so logs and tracebacks stay English."""

    write: Callable[[Messages], str]

    def __new__(cls, write: Callable[[Messages], str]) -> Told:
        told = super().__new__(cls, write(ENGLISH))
        told.write = write
        return told


def listing(items: Sequence[str]) -> Told:
    """`items` joined as the reader's language lists them ("a, b"; 「a、b」), for a field."""
    return Told(lambda t: t._(", ").join(say(item, t) for item in items))


def anded(items: Sequence[str]) -> Told:
    """`items` joined as the reader's language says "a and b" (「a、b」), for a field."""
    return Told(lambda t: t._(" and ").join(say(item, t) for item in items))


def _said(value: Any, t: Messages) -> Any:
    return say(value, t) if isinstance(value, str) else value


def say(text: str, t: Messages) -> str:
    """`text` in `t`'s language when it is a Said or Told, else as it is."""
    if t.lang == "en":
        return text
    if isinstance(text, Said):
        return text.msg.say(t)
    return text.write(t) if isinstance(text, Told) else text
