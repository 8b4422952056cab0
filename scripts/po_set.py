"""Set Chinese translations from a JSON object {msgid: msgstr} (or [[context, msgid, msgstr], ...]).

    .venv/bin/python scripts/po_set.py new.json
Refuses a translation whose %(placeholders)s differ from the msgid's. Keeps the catalog header."""
import json
import re
import sys

from babel.messages.pofile import read_po, write_po

PO = "portal/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
PH = re.compile(r"%\((\w+)\)[-+ #0]*\d*[sd]")

data = json.load(open(sys.argv[1], encoding="utf-8"))
items = [(None, k, v) for k, v in data.items()] if isinstance(data, dict) else [tuple(x) for x in data]
with open(PO, "rb") as fh:
    catalog = read_po(fh)
for ctx, msgid, msgstr in items:
    entry = catalog.get(msgid, context=ctx)
    if entry is None:
        sys.exit(f"not in the catalog: {msgid!r}")
    if sorted(PH.findall(msgid)) != sorted(PH.findall(msgstr)):
        sys.exit(f"placeholders differ: {msgid!r} -> {msgstr!r}")
    entry.string = msgstr
with open(PO, "wb") as fh:
    write_po(fh, catalog, width=0, sort_output=False, include_previous=False)
print(f"set {len(items)} translation(s)")
