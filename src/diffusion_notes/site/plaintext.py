"""Plain text from TeX and from rendered pages: search snippets and figure alt text.

The search index and alt text are read as text, never typeset: ``\\(\\bar\\alpha_t\\)`` should read
``ᾱ_t``-ish, not as raw TeX, and the page chrome that the search plugin picks up with the text
(the heading permalink "¶", the notebook copy button's "Copied!") should not show at all.
"""

from __future__ import annotations

import re

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
    "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ",
    "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ",
    "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}
_SYMBOLS = {
    "mid": "|", "sim": "~", "approx": "≈", "cdot": "·", "times": "×", "le": "≤", "leq": "≤",
    "ge": "≥", "geq": "≥", "neq": "≠", "ne": "≠", "to": "→", "rightarrow": "→",
    "leftarrow": "←", "infty": "∞", "nabla": "∇", "partial": "∂", "sum": "∑", "prod": "∏",
    "int": "∫", "sqrt": "√", "propto": "∝", "in": "∈", "log": "log", "exp": "exp",
    "ldots": "…", "dots": "…", "cdots": "…", "pm": "±", "top": "⊤",
}
# commands that only format their argument (or space things out): dropped, argument kept
_COMMAND = re.compile(r"\\([A-Za-z]+)\*?")
_MATH = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]|\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.DOTALL)


def _command(m: re.Match[str]) -> str:
    name = m.group(1)
    if name in _GREEK:
        return _GREEK[name]
    if name in _SYMBOLS:
        return f" {_SYMBOLS[name]} " if len(_SYMBOLS[name]) == 1 and name not in (
            "sqrt", "sum", "prod", "int", "nabla", "partial") else _SYMBOLS[name]
    return ""  # \mathrm, \bar, \left, \quad, \frac ... : formatting only


def tex_math_to_text(tex: str) -> str:
    """One TeX formula (no delimiters) as readable plain text."""
    text = re.sub(r"\\[,;:! ]", " ", tex)
    text = _COMMAND.sub(_command, text)
    text = text.replace("{", "").replace("}", "").replace("&", " ").replace("\\\\", " ")
    return re.sub(r"\s+", " ", text).strip()


def tex_to_text(text: str) -> str:
    """Text with inline/display maths (``\\(..\\)``, ``\\[..\\]``, ``$..$``, ``$$..$$``) made plain."""
    return _MATH.sub(lambda m: tex_math_to_text(next(g for g in m.groups() if g is not None)),
                     text)


_CHROME = re.compile(r"\s*¶|Copied!|\bCopy to clipboard\b")


def clean_search_text(text: str) -> str:
    """A search-index text without page chrome and with its maths as plain text."""
    text = _CHROME.sub("", text)
    return re.sub(r"[ \t]{2,}", " ", tex_to_text(text)).strip()
