#!/usr/bin/env bash
# Translations: extract English msgids, update the Simplified Chinese catalog, compile.
#   bash scripts/i18n.sh update    # after changing user-facing strings (then translate the empty msgstr)
#   bash scripts/i18n.sh compile   # done by scripts/run and scripts/test
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
case "${1:-compile}" in
  update)
    "$PY" -m babel.messages.frontend extract -F babel.cfg -k _l -k N_ -k lazy_gettext -k lazy_ngettext:1,2 \
      -k pgettext:1c,2 -k lazy_pgettext:1c,2 -k npgettext:1c,2,3 -k lazy_npgettext:1c,2,3 --no-location --sort-output \
      --project hr-portal -o portal/translations/messages.pot . >/dev/null 2>&1
    if [ -f portal/translations/zh_Hans_CN/LC_MESSAGES/messages.po ]; then
      "$PY" -m babel.messages.frontend update -i portal/translations/messages.pot -d portal/translations \
        -l zh_Hans_CN --no-fuzzy-matching >/dev/null
    else
      "$PY" -m babel.messages.frontend init -i portal/translations/messages.pot -d portal/translations -l zh_Hans_CN >/dev/null
    fi
    ;;
  compile)
    "$PY" -m babel.messages.frontend compile -d portal/translations --statistics
    ;;
  *) echo "usage: $0 update|compile" >&2; exit 2 ;;
esac
