"""Browser: the leaver completes a checklist item with an upload on a phone (390x844)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.core.db import db
from portal.core.models import User
from portal.offboarding.models import ChecklistItem, ChecklistTemplate
from portal.org.models import Employee
from tests.offboarding.conftest import PDF

pytestmark = pytest.mark.browser


def test_leaver_completes_an_item_with_an_upload_on_a_phone(app, cast, phone):
    from portal.offboarding import services
    with app.app_context():
        ob = services.submit_resignation(db.session.get(User, cast.leaver.id), "")
        services.start_handover(ob, db.session.get(User, cast.hr.id),
                                db.session.get(Employee, cast.successor.employee_id),
                                db.session.get(ChecklistTemplate, cast.template_id))
        db.session.commit()
        ob_id = ob.id
        item_id = db.session.scalar(select(ChecklistItem.id).where(ChecklistItem.title == "客户资料交接"))

    phone.login(cast.leaver)
    phone.goto("/offboarding/queue")
    assert phone.page.locator("#my-offboarding").count() == 1, phone.page.content()[:3000]
    phone.page.click("#my-offboarding a.button")
    phone.page.wait_for_url(phone.live(f"/offboarding/{ob_id}"))
    card = phone.page.locator(f"#item-{item_id}")
    assert "document required" in card.inner_text()

    # Saving without the required document is refused with a clear message, nothing saved.
    card.locator("textarea").fill("客户清单与联系人已整理")
    card.locator("button[type=submit]").first.click()
    phone.page.wait_for_selector("#problem")
    assert "requires an uploaded document" in phone.page.inner_text("#problem")
    phone.assert_clean(allow=r"HTTP 422|status of 422")

    card = phone.page.locator(f"#item-{item_id}")
    card.locator("input[type=file]").set_input_files(
        {"name": "客户清单.pdf", "mimeType": "application/pdf", "buffer": PDF})
    card.locator("button[type=submit]").first.click()
    phone.page.wait_for_url(phone.live(f"/offboarding/{ob_id}"))
    card = phone.page.locator(f"#item-{item_id}")
    assert "Done" in card.inner_text()
    assert card.locator("a", has_text="Uploaded document").count() == 1
    phone.assert_clean(allow=r"HTTP 422|status of 422")
    phone.screenshot("item-done")
    db.session.rollback()
    item = db.session.get(ChecklistItem, item_id)
    assert item.status == "done" and item.file_id and item.note == "客户清单与联系人已整理"
