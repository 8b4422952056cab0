"""Normalised pinyin for people search: 张三 -> ("zhangsan", "zs")."""
from __future__ import annotations

from pypinyin import Style, lazy_pinyin


def pinyin_fields(name: str) -> tuple[str, str]:
    name = (name or "").strip()
    full = "".join(lazy_pinyin(name, errors="default")).lower().replace(" ", "")
    initials = "".join(p[0] for p in lazy_pinyin(name, style=Style.FIRST_LETTER, errors="default")
                       if p).lower().replace(" ", "")
    return full[:255], initials[:40]
