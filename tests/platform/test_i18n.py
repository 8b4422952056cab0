"""Every user-facing string has a Simplified Chinese translation, with the same placeholders."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "portal" / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "_l": None, "N_": None, "gettext": None, "lazy_gettext": None,
            "ngettext": (1, 2), "lazy_ngettext": (1, 2),
            # (msgctxt, msgid[, plural]): babel extract yields the context as the fifth value
            "pgettext": ((1, "c"), 2), "lazy_pgettext": ((1, "c"), 2),
            "npgettext": ((1, "c"), 2, 3), "lazy_npgettext": ((1, "c"), 2, 3)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _source_msgids() -> set[tuple[str, str | None]]:
    """(msgid, context) pairs; context is None for plain gettext."""
    ids: set[tuple[str, str | None]] = set()
    method_map = [("portal/**.py", "python"), ("templates/**.html", "jinja2")]
    for _file, _line, message, _comments, ctx in extract_from_dir(
            str(ROOT), method_map, keywords=KEYWORDS, options_map={"templates/**.html": {}}):
        if isinstance(message, tuple):
            ids.update((m, ctx) for m in message if m)
        elif message:
            ids.add((message, ctx))
    return ids


def test_every_string_is_translated_to_chinese():
    with PO.open("rb") as fh:
        catalog = read_po(fh)
    missing, broken = [], []
    for msgid, ctx in sorted(_source_msgids(), key=lambda pair: (pair[0], pair[1] or "")):
        # a plural entry is keyed by its singular; the plural form is checked through that entry
        entry = catalog.get(msgid, context=ctx) or next(
            (m for m in catalog if m.context == ctx and isinstance(m.id, tuple) and msgid in m.id), None)
        if entry is None or not entry.string or entry.fuzzy or (
                isinstance(entry.string, tuple) and not all(entry.string)):
            missing.append(f"{ctx}|{msgid}" if ctx else msgid)
            continue
        string = entry.string if isinstance(entry.string, str) else entry.string[0]
        if set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(string)):
            broken.append((msgid, string))
    assert not missing, f"{len(missing)} untranslated strings (run scripts/i18n.sh update): {missing[:20]}"
    assert not broken, f"placeholders differ: {broken[:10]}"
