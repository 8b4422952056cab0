"""Every user-facing string has a Simplified Chinese translation, with the same placeholders."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "portal" / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "_l": None, "N_": None, "gettext": None, "lazy_gettext": None,
            "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _source_msgids() -> set[str]:
    ids: set[str] = set()
    method_map = [("portal/**.py", "python"), ("templates/**.html", "jinja2")]
    for _file, _line, message, _comments, _ctx in extract_from_dir(
            str(ROOT), method_map, keywords=KEYWORDS, options_map={"templates/**.html": {}}):
        if isinstance(message, tuple):
            ids.update(m for m in message if m)
        elif message:
            ids.add(message)
    return ids


def test_every_string_is_translated_to_chinese():
    with PO.open("rb") as fh:
        catalog = read_po(fh)
    missing, broken = [], []
    for msgid in sorted(_source_msgids()):
        entry = catalog.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(msgid)
            continue
        string = entry.string if isinstance(entry.string, str) else entry.string[0]
        if set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(string)):
            broken.append((msgid, string))
    assert not missing, f"{len(missing)} untranslated strings (run scripts/i18n.sh update): {missing[:20]}"
    assert not broken, f"placeholders differ: {broken[:10]}"
