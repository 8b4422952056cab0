"""Upload checks: size, name, content matching the extension, zip bombs; storage outside static/."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage

from portal.core import uploads
from portal.core.db import db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def fs(data: bytes, name: str) -> FileStorage:
    return FileStorage(stream=io.BytesIO(data), filename=name)


def docx_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def test_pdf_is_stored_outside_static_with_hash(app):
    with app.app_context():
        f = uploads.save_upload(fs(PDF, "交接清单.pdf"), "handover")
        db.session.commit()
        path = uploads.absolute_path(f)
        assert path.read_bytes() == PDF
        assert Path(app.static_folder).resolve() not in path.parents
        assert f.original_name == "交接清单.pdf" and f.kind == "pdf" and len(f.sha256) == 64
        assert path.name != "交接清单.pdf"  # random storage name


@pytest.mark.parametrize("data,name,code", [
    (b"", "a.pdf", "empty"),
    (PDF, "../../etc/passwd.pdf", "bad_name"),
    (PDF, "..\\x.pdf", "bad_name"),
    (PDF, "a\x00b.pdf", "bad_name"),
    (PDF, "x" * 200 + ".pdf", "bad_name"),
    (PNG, "photo.pdf", "mismatch"),
    (b"MZ\x90\x00 windows exe", "setup.exe", "not_allowed"),
    (b"MZ\x90\x00\x00\x00 not really a pdf", "doc.pdf", "mismatch"),
    (b"<html><script>alert(1)</script>", "page.html", "not_allowed"),
    (PDF, "doc.docx", "mismatch"),
])
def test_refused_uploads(app, data, name, code):
    with app.app_context():
        with pytest.raises(uploads.UploadError) as err:
            uploads.save_upload(fs(data, name), "handover")
        assert err.value.code == code
        assert uploads.upload_error_message(err.value)
    assert db.session.query(uploads.StoredFile).count() == 0


def test_oversize_refused_while_reading(app):
    with app.app_context():
        with pytest.raises(uploads.UploadError) as err:
            uploads.save_upload(fs(PDF + b"0" * 2_000_000, "big.pdf"), "handover", max_bytes=1_000_000)
        assert err.value.code == "too_large"


def test_docx_detected_and_zip_bomb_refused(app):
    with app.app_context():
        assert uploads.save_upload(fs(docx_bytes(), "说明.docx"), "handover").kind == "docx"
        bomb = io.BytesIO()
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("[Content_Types].xml", "<Types/>")
            zf.writestr("word/document.xml", b"\x00" * (50 * 1024 * 1024))
        with pytest.raises(uploads.UploadError) as err:
            uploads.save_upload(fs(bomb.getvalue(), "bomb.docx"), "handover")
        assert err.value.code == "zip_bomb"
        db.session.rollback()


def test_download_headers(app):
    with app.app_context():
        f = uploads.save_upload(fs(PDF, "a.pdf"), "handover")
        db.session.commit()
    with app.test_request_context():
        resp = uploads.download(f)
        assert resp.headers["Content-Disposition"].startswith("attachment")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        resp.close()
