"""Uploaded files: stored outside the web root under random names, checked by content (not by the
name the browser sent), served only as downloads by views that checked access first.

``save_upload`` refuses: empty or oversize files, names with path parts or control characters, content
that does not match the extension, and zip-based documents whose unpacked size or ratio looks like a
zip bomb. Nothing is written when a check fails.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from flask import current_app, send_file
from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base, UTCDateTime, db, utcnow

CHUNK = 64 * 1024
MAX_NAME = 120
ZIP_MAX_UNPACKED = 200 * 1024 * 1024
ZIP_MAX_RATIO = 100
ZIP_MAX_MEMBERS = 5000

# kind -> (extensions, content type)
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "pdf": ((".pdf",), "application/pdf"),
    "png": ((".png",), "image/png"),
    "jpeg": ((".jpg", ".jpeg"), "image/jpeg"),
    "gif": ((".gif",), "image/gif"),
    "webp": ((".webp",), "image/webp"),
    "mp4": ((".mp4", ".m4v"), "video/mp4"),
    "docx": ((".docx",), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": ((".xlsx",), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "pptx": ((".pptx",), "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    "zip": ((".zip",), "application/zip"),
    "text": ((".txt", ".csv", ".md"), "text/plain; charset=utf-8"),
}
DOCUMENTS = {"pdf", "png", "jpeg", "gif", "webp", "docx", "xlsx", "pptx", "text"}
MEDIA = DOCUMENTS | {"mp4"}


class UploadError(ValueError):
    """``code`` is one of: empty, too_large, bad_name, not_allowed, mismatch, zip_bomb."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


def upload_error_message(exc: UploadError) -> str:
    from flask_babel import gettext as _
    messages = {
        "empty": _("The file is empty."),
        "too_large": _("The file is larger than %(mb)s MB.", mb=exc.params.get("mb", "?")),
        "bad_name": _("The file name is not acceptable (no folders, control characters or names longer "
                      "than 120 characters)."),
        "not_allowed": _("This type of file is not accepted here. Accepted: %(kinds)s.",
                         kinds=exc.params.get("kinds", "")),
        "mismatch": _("The file's content does not match its extension."),
        "zip_bomb": _("The archive unpacks to an unreasonable size and was refused."),
    }
    return messages.get(exc.code, exc.code)


class StoredFile(Base):
    __tablename__ = "stored_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(40))
    original_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(300))  # relative to UPLOAD_DIR
    uploaded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


def clean_name(name: str) -> str:
    """The user's file name, for display and download only (never used as a path)."""
    raw = name or ""
    if not raw or len(raw) > MAX_NAME or "/" in raw or "\\" in raw or ".." in raw or raw.startswith("."):
        raise UploadError("bad_name")
    if any(unicodedata.category(ch)[0] == "C" for ch in raw):
        raise UploadError("bad_name")
    return unicodedata.normalize("NFC", raw.strip())


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    return None


def _zip_kind(data: io.BytesIO) -> str:
    try:
        with zipfile.ZipFile(data) as zf:
            infos = zf.infolist()
            if len(infos) > ZIP_MAX_MEMBERS:
                raise UploadError("zip_bomb")
            unpacked = sum(i.file_size for i in infos)
            packed = max(1, sum(i.compress_size for i in infos))
            if unpacked > ZIP_MAX_UNPACKED or unpacked / packed > ZIP_MAX_RATIO:
                raise UploadError("zip_bomb")
            names = {i.filename for i in infos}
    except zipfile.BadZipFile:
        raise UploadError("mismatch")
    if "[Content_Types].xml" in names:
        if any(n.startswith("word/") for n in names):
            return "docx"
        if any(n.startswith("xl/") for n in names):
            return "xlsx"
        if any(n.startswith("ppt/") for n in names):
            return "pptx"
    return "zip"


def detect_kind(data: bytes) -> str | None:
    kind = _sniff(data[:16])
    if kind == "zip":
        return _zip_kind(io.BytesIO(data))
    if kind is None:
        if b"\x00" in data[:CHUNK]:
            return None
        try:
            data[:CHUNK].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < CHUNK - 4:  # a multi-byte char cut at the chunk end is fine
                return None
        return "text"
    return kind


def read_limited(stream, max_bytes: int) -> bytes:
    buf = io.BytesIO()
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        buf.write(chunk)
        if buf.tell() > max_bytes:
            raise UploadError("too_large", mb=round(max_bytes / 1024 / 1024, 1))
    return buf.getvalue()


@dataclass
class Checked:
    data: bytes
    name: str
    kind: str


def check_upload(file_storage, allowed: Iterable[str], max_bytes: int) -> Checked:
    """Validate without storing (also used by importers that only parse the file)."""
    allowed = set(allowed)
    name = clean_name(getattr(file_storage, "filename", "") or "")
    data = read_limited(file_storage.stream if hasattr(file_storage, "stream") else file_storage,
                        max_bytes)
    if not data:
        raise UploadError("empty")
    ext = os.path.splitext(name)[1].lower()
    kinds_for_ext = [k for k, (exts, _ct) in KINDS.items() if ext in exts]
    if not kinds_for_ext or not set(kinds_for_ext) & allowed:
        raise UploadError("not_allowed", kinds=", ".join(sorted(e for k in allowed for e in KINDS[k][0])))
    kind = detect_kind(data)
    if kind not in kinds_for_ext:
        raise UploadError("mismatch")
    return Checked(data, name, kind)


def save_upload(file_storage, purpose: str, allowed: Iterable[str] = DOCUMENTS,
                max_bytes: int | None = None, actor=None) -> StoredFile:
    """Check and store an upload; adds the StoredFile row to the current transaction."""
    if not re.fullmatch(r"[a-z0-9_]{1,40}", purpose):
        raise ValueError("purpose must be a short identifier")
    max_bytes = max_bytes or current_app.config.get("MAX_CONTENT_LENGTH") or 20 * 1024 * 1024
    checked = check_upload(file_storage, allowed, max_bytes)
    return store_bytes(checked.data, checked.name, checked.kind, purpose, actor)


def store_bytes(data: bytes, name: str, kind: str, purpose: str, actor=None) -> StoredFile:
    root = Path(current_app.config["UPLOAD_DIR"])
    now = utcnow()
    rel = Path(purpose) / f"{now:%Y}" / f"{now:%m}" / f"{uuid.uuid4().hex}{KINDS[kind][0][0]}"
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    row = StoredFile(purpose=purpose, original_name=name, kind=kind, content_type=KINDS[kind][1],
                     size=len(data), sha256=hashlib.sha256(data).hexdigest(), path=str(rel),
                     uploaded_by_id=getattr(actor, "id", None), uploaded_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def absolute_path(f: StoredFile) -> Path:
    root = Path(current_app.config["UPLOAD_DIR"]).resolve()
    path = (root / f.path).resolve()
    if root not in path.parents:
        raise UploadError("bad_name")
    return path


def read_bytes(f: StoredFile) -> bytes:
    return absolute_path(f).read_bytes()


def download(f: StoredFile):
    """Serve a stored file as an attachment (the caller has checked access and audited the view)."""
    resp = send_file(absolute_path(f), mimetype=f.content_type, as_attachment=True,
                     download_name=f.original_name, max_age=0)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    resp.headers["Cache-Control"] = "no-store"  # personal files: not kept by the browser or a proxy
    return resp
