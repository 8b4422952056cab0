"""Inbox (in-app messages), preferences, ops page."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.core import notify, tasks
from portal.core.db import db, get_or_404
from portal.core.security import login_only, register_permissions, require
from portal.core.ui import htmx_redirect, page_arg, paginate, register_nav, render
from portal.home.views import register_card
from portal.notify import bp

register_permissions({"ops.view": _l("See background jobs and requeue failed ones")},
                     {"admin": ["ops.view"], "it": ["ops.view"]})
register_nav("notify.inbox", _l("Messages"), None, order=5)
register_nav("notify.ops", _l("Background jobs"), "ops.view", order=95, group="admin")
register_card(None, _l("Messages"), _l("Reminders and messages from HR and your manager."), "notify.inbox")
register_card("ops.view", _l("Background jobs"), _l("Queues, failed jobs, messages that could not be sent."),
              "notify.ops")


@bp.route("/notifications")
@login_only
def inbox():
    page, per_page = page_arg(20)
    only_unread = request.args.get("unread") == "1"
    stmt = (select(notify.Notification)
            .where(notify.Notification.user_id == current_user.id, notify.Notification.channel == "inapp")
            .order_by(notify.Notification.created_at.desc(), notify.Notification.id.desc()))
    if only_unread:
        stmt = stmt.where(notify.Notification.read_at.is_(None))
    return render("notify/inbox.html", "notify/_inbox_list.html", page=paginate(stmt, page, per_page),
                  only_unread=only_unread)


@bp.route("/notifications/badge")
@login_only
def badge():
    return render("notify/_badge.html", count=notify.unread_count(current_user.id))


@bp.route("/notifications/<int:notification_id>")
@login_only
def show(notification_id: int):
    n = get_or_404(notify.Notification, notification_id)
    if n.user_id != current_user.id or n.channel != "inapp":
        abort(404)
    return render("notify/show.html", n=n)


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@login_only
def read(notification_id: int):
    n = get_or_404(notify.Notification, notification_id)
    if n.user_id != current_user.id or n.channel != "inapp":
        abort(404)
    notify.mark_read(n, current_user)
    db.session.commit()
    target = n.link if n.link and n.link.startswith("/") and not n.link.startswith("//") \
        else url_for("notify.show", notification_id=n.id)
    return htmx_redirect(target)


@bp.route("/notifications/read-all", methods=["POST"])
@login_only
def read_all():
    rows = db.session.scalars(select(notify.Notification).where(
        notify.Notification.user_id == current_user.id, notify.Notification.channel == "inapp",
        notify.Notification.read_at.is_(None), notify.Notification.formal.is_(False))).all()
    for n in rows:
        notify.mark_read(n, current_user)
    db.session.commit()
    flash(_("Marked %(n)s message(s) as read. Formal notices stay unread until you open them.",
            n=len(rows)), "success")
    return htmx_redirect(url_for("notify.inbox"))


@bp.route("/notifications/preferences", methods=["GET", "POST"])
@login_only
def preferences():
    if request.method == "POST":
        for channel in ("email", "sms"):
            notify.set_preference(current_user.id, channel, request.form.get(channel) == "on")
        db.session.commit()
        flash(_("Saved. Formal notices always use every channel."), "success")
        return redirect(url_for("notify.preferences"), code=303)
    return render("notify/preferences.html", channels=notify.enabled_channels(current_user.id))


@bp.route("/ops/jobs")
@require("ops.view")
def ops():
    import redis
    from portal.core import jobs
    try:
        st, error = jobs.status(), None
    except redis.RedisError as exc:
        st, error = None, str(exc)
    failed_outbox = db.session.scalars(
        select(notify.Notification).where(notify.Notification.status == "failed")
        .order_by(notify.Notification.id.desc()).limit(50)).all()
    return render("notify/ops.html", "notify/_ops_body.html", st=st, error=error,
                  failed_outbox=failed_outbox)


@bp.route("/ops/jobs/<job_id>/requeue", methods=["POST"])
@require("ops.view")
def requeue(job_id: str):
    from portal.core import audit, jobs
    ok = jobs.requeue_failed(job_id)
    audit.record("jobs.requeued", ("rq_job", job_id[:60]), {"found": ok})
    db.session.commit()
    flash(_("Job requeued.") if ok else _("That job is no longer in the failed list."),
          "success" if ok else "error")
    return redirect(url_for("notify.ops"), code=303)


@bp.route("/ops/outbox/<int:notification_id>/retry", methods=["POST"])
@require("ops.view")
def retry_notification(notification_id: int):
    from portal.core import audit, jobs
    n = get_or_404(notify.Notification, notification_id)
    if n.status == "failed" and n.channel != "inapp":
        n.status, n.attempts, n.due_at = "pending", 0, None
        audit.record("notification.retried", n, {"previous_error": n.last_error})
        jobs.enqueue_after_commit("portal.core.notify.deliver", n.id, queue="notify")
        db.session.commit()
        flash(_("The message was queued again."), "success")
    return redirect(url_for("notify.ops"), code=303)


# ---------------------------------------------------------------- long-running tasks

def _task_for_user(task_id: int):
    from portal.core.security import can as _can
    from portal.core.tasks import BackgroundTask
    task = get_or_404(BackgroundTask, task_id)
    if task.owner_id != current_user.id and not _can(current_user, "ops.view"):
        abort(404)
    return task


@bp.route("/tasks/<int:task_id>")
@login_only
def task(task_id: int):
    return render("notify/task.html", task=_task_for_user(task_id), task_kinds=tasks.KIND_LABELS)


@bp.route("/tasks/<int:task_id>/status")
@login_only
def task_status(task_id: int):
    t = _task_for_user(task_id)
    resp = render("notify/_task_status.html", task=t, task_kinds=tasks.KIND_LABELS)
    if t.finished and request.headers.get("HX-Request") == "true":
        resp.status_code = 286  # htmx: stop polling
    return resp


@bp.route("/tasks/<int:task_id>/download")
@login_only
def task_download(task_id: int):
    from portal.core import audit, uploads
    t = _task_for_user(task_id)
    # Operators (ops.view) follow every task's progress, but the result is the owner's export
    # (an evidence pack, an OKR report): only the owner downloads it.
    if t.status != "done" or t.result_file_id is None or t.owner_id != current_user.id:
        abort(404)
    f = get_or_404(uploads.StoredFile, t.result_file_id)
    audit.record("task.result_downloaded", t, {"kind": t.kind, "file_id": f.id, "sha256": f.sha256})
    db.session.commit()
    return uploads.download(f)
