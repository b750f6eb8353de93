"""Plain text <-> BibTeX/LaTeX field text, for titles and names.

``to_latex`` escapes the characters that are special to BibTeX and LaTeX (``& % $ # _ { } ~ ^ \\``)
and writes common accented letters as LaTeX accent commands (``Señorita`` -> ``Se{\\~n}orita``), so
that the written ``papers.bib`` works with classic BibTeX as well as biber. ``to_text`` undoes it
for display (and also reads the styles found in hand-written BibTeX: ``{\\"o}``, ``\\'{e}``,
``{GAN}s``, ``--``). ``to_text(to_latex(s)) == s`` for any text without control characters.
"""

from __future__ import annotations

import re
import unicodedata

# Combining mark -> LaTeX accent command.
_ACCENTS = {
    "\u0300": "`",
    "\u0301": "'",
    "\u0302": "^",
    "\u0303": "~",
    "\u0308": '"',
    "\u0304": "=",
    "\u0307": ".",
    "\u030c": "v",
    "\u0306": "u",
    "\u030b": "H",
    "\u0327": "c",
    "\u0328": "k",
    "\u030a": "r",
}
_ACCENT_CMDS = {v: k for k, v in _ACCENTS.items()}

# Letters that are LaTeX commands of their own.
_LETTERS = {
    "ß": r"\ss",
    "æ": r"\ae",
    "Æ": r"\AE",
    "ø": r"\o",
    "Ø": r"\O",
    "å": r"\aa",
    "Å": r"\AA",
    "œ": r"\oe",
    "Œ": r"\OE",
    "ł": r"\l",
    "Ł": r"\L",
    "ı": r"\i",
}
_LETTER_CMDS = {v[1:]: k for k, v in _LETTERS.items()}

# Superscript digits (Mask²DiT) -> \textsuperscript.
_SUPERSCRIPTS = {"²": "2", "³": "3", "¹": "1"}
_SUPERSCRIPT_CHARS = {v: k for k, v in _SUPERSCRIPTS.items()}

_SPECIAL = {
    "\\": r"{\textbackslash}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"{\textasciitilde}",
    "^": r"{\textasciicircum}",
}


def to_latex(text: str) -> str:
    """Escape plain text for a BibTeX field value (braces balanced, specials escaped)."""
    out: list[str] = []
    for ch in text:
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _LETTERS:
            out.append("{" + _LETTERS[ch] + "}")
        elif ch in _SUPERSCRIPTS:
            out.append(r"{\textsuperscript{" + _SUPERSCRIPTS[ch] + "}}")
        elif ord(ch) < 128:
            out.append(ch if ch.isprintable() else " ")
        else:
            decomposed = unicodedata.normalize("NFD", ch)
            base, marks = decomposed[0], decomposed[1:]
            if len(marks) == 1 and marks in _ACCENTS and base.isascii() and base.isalpha():
                cmd = _ACCENTS[marks]
                base = r"\i" if base == "i" else base
                sep = " " if cmd.isalpha() else ""
                out.append("{\\" + cmd + sep + base + "}")
            else:
                out.append(ch)  # kept as UTF-8 (biber and inputenc read it)
    # "--" would read back as an en dash: keep a literal double hyphen literal.
    return "".join(out).replace("--", "-{}-").replace("--", "-{}-")


_CMD_WITH_ARG = re.compile(
    r"\\(textsuperscript|textsubscript|emph|textit|textbf|mathrm|text)\s*\{([^{}]*)\}"
)
_ACCENT_RE = re.compile(r"""\\([`'^~"=.vuHckr])\s*(?:\{\s*(\\?[A-Za-z])\s*\}|(\\?[A-Za-z]))""")
_LETTER_RE = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i)(?![A-Za-z])\s?")
_NAMED = {
    "textbackslash": "\\",
    "textasciitilde": "~",
    "textasciicircum": "^",
    "textendash": "\u2013",
    "textemdash": "\u2014",
}


def to_text(value: str) -> str:
    """Read a BibTeX field value as display text (braces dropped, escapes and accents resolved)."""
    s = value
    for name, ch in _NAMED.items():
        s = re.sub(r"\\" + name + r"(?![A-Za-z])\s?", lambda _m, c=ch: _protect(c), s)

    def _arg(m: re.Match[str]) -> str:
        if m.group(1) == "textsuperscript":
            return "".join(_SUPERSCRIPT_CHARS.get(c, c) for c in m.group(2))
        return m.group(2)

    s = _CMD_WITH_ARG.sub(_arg, s)

    def _accent(m: re.Match[str]) -> str:
        base = m.group(2) or m.group(3)
        base = "i" if base == r"\i" else base
        if base.startswith("\\"):
            return m.group(0)
        return unicodedata.normalize("NFC", base + _ACCENT_CMDS[m.group(1)])

    s = _ACCENT_RE.sub(_accent, s)
    s = _LETTER_RE.sub(lambda m: _LETTER_CMDS[m.group(1)], s)
    s = re.sub(r"\\([&%$#_{}])", lambda m: _protect(m.group(1)), s)
    s = s.replace("---", "\u2014").replace("--", "\u2013")
    s = s.replace("{", "").replace("}", "").replace("~", " ")
    s = re.sub(r"\s+", " ", s).strip()
    return re.sub("[\ue000-\ue0ff]", lambda m: chr(ord(m.group(0)) - 0xE000), s)


def _protect(text: str) -> str:
    """Hide already-resolved characters from the later brace/tilde/dash passes."""
    return "".join(chr(0xE000 + ord(c)) if ord(c) < 256 else c for c in text)


def protect_case(latex: str) -> str:
    """Brace the words of a LaTeX title whose capitals must survive a sentence-case style.

    A word is protected when it has a capital after its first character, or a capital and a
    digit (``DiT``, ``PUSA``, ``V1.0``, ``Wan-I2V``, ``Se{\\~n}orita-2M``). Already braced groups are left as they are.
    """
    out = []
    for word in latex.split(" "):
        bare = re.sub(r"\\[A-Za-z]+|[{}]", "", word)
        mixed = re.search(r"[A-Z]", bare[1:]) or (bare[:1].isupper() and re.search(r"\d", bare))
        if mixed and not (word.startswith("{") and word.endswith("}")):
            out.append("{" + word + "}")
        else:
            out.append(word)
    return " ".join(out)
