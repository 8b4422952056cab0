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


def test_date_filters_print_what_babel_prints(app):
    """localdt / localdate take a strftime shortcut for numeric patterns; the text is Babel's, in company
    time, in both languages, for aware and naive (UTC) values and plain dates."""
    import datetime as dt
    from flask_babel import force_locale, format_date, format_datetime
    f = app.jinja_env.filters
    values = [dt.datetime(2026, 11, 25, 17, 3, 9, tzinfo=dt.timezone.utc), dt.datetime(2026, 12, 31, 16, 30),
              dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))]
    with app.test_request_context():
        for loc in ("zh_Hans_CN", "en"):
            with force_locale(loc):
                for v in values:
                    for fmt in ("yyyy-MM-dd HH:mm", "HH:mm", "yyyy-MM-dd", "HH:mm:ss", "yyyy-MM-dd HH:mm:ss",
                                "MM-dd HH:mm", "MMMM d"):
                        assert f["localdt"](v, fmt) == format_datetime(v, fmt), (loc, v, fmt)
                    assert f["localdt"](v) == format_datetime(v, "yyyy-MM-dd HH:mm")
                    assert f["localdate"](v) == format_date(v, "yyyy-MM-dd")
                assert f["localdate"](dt.date(2026, 2, 3)) == "2026-02-03"
                assert f["localdt"](None) == "" and f["localdate"](None) == ""
        assert f["localdt"](values[1], "HH:mm") == "00:30"  # naive values are UTC: 16:30 UTC is 00:30 here
