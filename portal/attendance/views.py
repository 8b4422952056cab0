"""Attendance pages: parse -> permission -> services -> commit -> render/redirect."""
from __future__ import annotations

import datetime as dt

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.attendance import bp, engine, reports, scan, services
from portal.attendance.forms import (ANOMALY_LABELS, KIND_LABELS, RULE_KIND_LABELS, STATUS_LABELS, AssignForm,
                                     CalendarDayForm, ClockForm, ConsentForm, CorrectionForm, DecisionForm,
                                     LeaveForm, MembersForm, RangeForm, ResolveForm, RuleForm, SettingsForm,
                                     ShiftForm, SiteForm, YearForm)
from portal.attendance.labels import REQUEST_STATUS_LABELS, SOURCE_LABELS
from portal.attendance.models import (Anomaly, AttendanceRule, CalendarDay, Correction, Exemption, LeaveRequest,
                                      Punch, RuleMember, Shift, WorkSite)
from portal.core import audit, tasks
from portal.core.db import db, get_or_404
from portal.core.security import can, is_manager_of, login_only, register_permissions, require
from portal.core.ui import Page, page_arg, paginate, register_nav, render
from portal.home.views import register_card
from portal.org.models import Employee

register_permissions(
    {"attendance.team": _l("See the team's attendance and approve its requests"),
     "attendance.view_all": _l("See and export everyone's attendance and anomalies"),
     "attendance.manage": _l("Manage attendance rules, calendar, sites and settings"),
     "attendance.alerts": _l("Receive attendance anomaly alerts")},
    {"manager": ["attendance.team"],
     "hr": ["attendance.team", "attendance.view_all", "attendance.manage", "attendance.alerts"],
     "admin": ["attendance.view_all"]})
register_nav("attendance.index", _l("Attendance"), None, order=20)
register_nav("attendance.team", _l("Team attendance"), "attendance.team", order=21)
register_nav("attendance.hr_days", _l("Attendance records"), "attendance.view_all", order=22)
register_card(None, _l("Clock in / out"), _l("Today's attendance, your month, leave and corrections."),
              "attendance.index")
register_card("attendance.team", _l("Team attendance"), _l("Who is in, late or missing today; approvals."),
              "attendance.team")
register_card("attendance.view_all", _l("Attendance anomalies"),
              _l("Absences, escalations and late-arrival flags from the daily scan."), "attendance.anomalies")

tasks.register_kind("attendance.recompute", _l("Recompute attendance"))

ERRORS = {
    "bad_kind": _l("Choose clock-in or clock-out."),
    "no_employee": _l("Your account is not linked to an employee record."),
    "not_at_work_place": _l("You are not on the office network or at a work site. Tick “out of the office” "
                            "and add a note, or clock in from the office."),
    "outside_not_allowed": _l("Out-of-office clock-in is not allowed by your attendance rule."),
    "outside_needs_note": _l("Add a note saying where you work out of the office."),
    "bad_leave_kind": _l("Choose a type of leave."),
    "bad_half": _l("Choose the half days."),
    "bad_dates": _l("The end is before the start."),
    "too_long": _l("A request can cover at most one year."),
    "overlap": _l("You already asked for leave on some of these days."),
    "already_decided": _l("This request was already decided."),
    "not_approver": _l("You cannot decide this request."),
    "not_yours": _l("This is not your request."),
    "reason_required": _l("Give a reason."),
    "future_day": _l("You cannot correct a day that has not come yet."),
    "future_time": _l("The time is in the future."),
    "past_deadline": _l("The deadline for corrections of this month was %(deadline)s."),
    "not_correctable": _l("Your attendance rule does not allow corrections of this day (status: %(status)s)."),
    "limit_reached": _l("You have used your %(limit)s corrections of this month."),
    "duplicate": _l("A correction of this punch is already waiting for approval."),
    "outside_window": _l("This time is too far from the day's working hours."),
    "year_unknown": _l("The official calendar has no data for %(year)s yet: add its dates by hand."),
    "bad_day_kind": _l("Choose a kind of day."),
    "bad_ranges": _l("Not IP ranges: %(ranges)s"),
    "bad_rule_kind": _l("Choose a type of rule."),
    "name_required": _l("Enter a name."),
    "name_taken": _l("Another rule has this name."),
    "unknown_employees": _l("Unknown employee numbers: %(names)s"),
    "bad_site": _l("Check the coordinates and the radius (10-5000 m)."),
    "unknown_shift": _l("Unknown shift %(code)s."),
}


def _msg(exc: services.AttendanceError) -> str:
    text = str(ERRORS.get(exc.code, exc.code))
    params = dict(exc.params)
    if "status" in params:  # a day status code: show its label
        params["status"] = str(STATUS_LABELS.get(params["status"], params["status"]))
    return text % params if params and "%(" in text else text


def _my_employee() -> Employee:
    emp = current_user.employee
    if emp is None:
        abort(404)
    return emp


def _tokens(raw: str) -> list[str]:
    import re
    return [t for t in re.split(r"[\s,，;；]+", raw or "") if t]


# ---------------------------------------------------------------- employee: today, clock, consent

def _today_ctx(form=None, error: str = ""):
    emp = current_user.employee
    state = services.today_state(emp) if emp is not None else None
    return {"state": state, "form": form or ClockForm(), "error": error, "labels": STATUS_LABELS}


@bp.route("/attendance")
@login_only
def index():
    return render("attendance/index.html", "attendance/_today.html", **_today_ctx())


def _source() -> str:
    ua = (request.user_agent.string or "").lower()
    return "mobile" if any(k in ua for k in ("mobile", "android", "iphone", "micromessenger")) else "web"


@bp.route("/attendance/clock", methods=["POST"])
@login_only
def clock():
    form = ClockForm()
    emp = current_user.employee
    if emp is None:
        abort(404)
    if not form.validate_on_submit():
        return render("attendance/index.html", "attendance/_today.html", status=422,
                      **_today_ctx(form, _("Location values are not valid.")))
    coords = None
    if form.latitude.data is not None and form.longitude.data is not None:
        acc = int(form.accuracy.data) if form.accuracy.data is not None else None
        coords = (form.latitude.data, form.longitude.data, acc)
    try:
        punch, created = services.clock(current_user, form.kind.data, _source(), request.remote_addr or "",
                                        coords, form.note.data or "", bool(form.outside.data))
    except services.AttendanceError as exc:
        db.session.rollback()
        return render("attendance/index.html", "attendance/_today.html", status=422,
                      **_today_ctx(form, _msg(exc)))
    db.session.commit()
    when = punch.at
    from portal.core.ui import local
    msg = (_("Clocked in at %(t)s.", t=local(when).strftime("%H:%M")) if punch.kind == "in"
           else _("Clocked out at %(t)s.", t=local(when).strftime("%H:%M")))
    if not created:
        msg = _("Already recorded at %(t)s (a second tap within a minute counts once).",
                t=local(when).strftime("%H:%M:%S"))
    flash(msg, "success")
    if request.headers.get("HX-Request") == "true":
        return render("attendance/index.html", "attendance/_today.html", **_today_ctx())
    return redirect(url_for("attendance.index"), code=303)


@bp.route("/attendance/consent", methods=["POST"])
@login_only
def consent():
    form = ConsentForm()
    emp = _my_employee()
    if not form.validate_on_submit() or form.granted.data not in ("1", "0"):
        abort(400)
    services.set_consent(emp, form.granted.data == "1", current_user)
    db.session.commit()
    flash(_("Location use allowed for clock-in.") if form.granted.data == "1"
          else _("Location will not be used. Clock in from the office network or as out-of-office."), "success")
    return redirect(url_for("attendance.index"), code=303)


# ---------------------------------------------------------------- employee: month, records

@bp.route("/attendance/month")
@login_only
def month():
    emp = _my_employee()
    m = reports.parse_month(request.args.get("month"), services.today())
    data = reports.my_month(emp, m)
    return render("attendance/month.html", month=m, prev=reports.shift_month(m, -1),
                  next=reports.shift_month(m, 1), labels=STATUS_LABELS, **data)


@bp.route("/attendance/records")
@login_only
def records():
    emp = _my_employee()
    page, per_page = page_arg(30)
    stmt = select(Punch).where(Punch.employee_id == emp.id).order_by(Punch.at.desc())
    return render("attendance/records.html", page=paginate(stmt, page, per_page), sources=SOURCE_LABELS)


@bp.route("/attendance/records.csv")
@login_only
def records_csv():
    emp = _my_employee()
    end = reports._date_arg(request.args.get("end")) or services.today()
    start = reports._date_arg(request.args.get("start")) or end - dt.timedelta(days=365)
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["日期 Date", "类型 Kind", "时间 Time", "来源 Source", "方式 Method", "备注 Note"])
    for row in reports.my_punch_rows(emp, start, end):
        w.writerow(row)
    audit.record("attendance.own_exported", ("employees", emp.id), {"start": start.isoformat(),
                                                                    "end": end.isoformat()})
    db.session.commit()
    return Response(("\ufeff" + buf.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="my-attendance-{end}.csv"'})


# ---------------------------------------------------------------- leave

def _leave_page(form, status=200):
    emp = _my_employee()
    mine = db.session.scalars(select(LeaveRequest).where(LeaveRequest.employee_id == emp.id)
                              .order_by(LeaveRequest.start_date.desc()).limit(100)).all()
    return render("attendance/leave.html", form=form, leaves=mine, kinds=KIND_LABELS, status=status,
                  request_statuses=REQUEST_STATUS_LABELS)


@bp.route("/attendance/leave")
@login_only
def leave():
    return _leave_page(LeaveForm())


@bp.route("/attendance/leave", methods=["POST"])
@login_only
def leave_submit():
    form = LeaveForm()
    _my_employee()
    if not form.validate_on_submit():
        return _leave_page(form, 422)
    try:
        services.request_leave(current_user, form.kind.data, form.start_date.data, form.start_half.data,
                               form.end_date.data, form.end_half.data, form.reason.data or "")
    except services.AttendanceError as exc:
        db.session.rollback()
        form.start_date.errors = list(form.start_date.errors) + [_msg(exc)]
        return _leave_page(form, 422)
    db.session.commit()
    flash(_("Leave request sent to your manager."), "success")
    return redirect(url_for("attendance.leave"), code=303)


@bp.route("/attendance/leave/<int:leave_id>/cancel", methods=["POST"])
@login_only
def leave_cancel(leave_id: int):
    lv = get_or_404(LeaveRequest, leave_id)
    ConsentForm().validate_on_submit()
    try:
        services.cancel_leave(lv, current_user)
    except services.AttendanceError as exc:
        if exc.code == "not_yours":
            abort(404)
        flash(_msg(exc), "error")
        return redirect(url_for("attendance.leave"), code=303)
    db.session.commit()
    flash(_("Leave request withdrawn."), "success")
    return redirect(url_for("attendance.leave"), code=303)


# ---------------------------------------------------------------- corrections

def _corrections_page(form, status=200):
    emp = _my_employee()
    mine = db.session.scalars(select(Correction).where(Correction.employee_id == emp.id)
                              .order_by(Correction.created_at.desc()).limit(100)).all()
    rule = services.rule_for(emp)
    return render("attendance/corrections.html", form=form, corrections=mine, rule=rule, labels=STATUS_LABELS,
                  status=status, request_statuses=REQUEST_STATUS_LABELS)


@bp.route("/attendance/corrections")
@login_only
def corrections():
    form = CorrectionForm()
    if request.args.get("date"):
        form.work_date.data = reports._date_arg(request.args.get("date"))
    return _corrections_page(form)


@bp.route("/attendance/corrections", methods=["POST"])
@login_only
def correction_submit():
    form = CorrectionForm()
    _my_employee()
    if not form.validate_on_submit():
        return _corrections_page(form, 422)
    from portal.core.uploads import UploadError, upload_error_message
    try:
        services.request_correction(current_user, form.work_date.data, form.kind.data, form.time.data,
                                    form.reason.data, request.files.get("attachment"))
    except services.AttendanceError as exc:
        db.session.rollback()
        form.work_date.errors = list(form.work_date.errors) + [_msg(exc)]
        return _corrections_page(form, 422)
    except UploadError as exc:
        db.session.rollback()
        form.attachment.errors = [upload_error_message(exc)]
        return _corrections_page(form, 422)
    db.session.commit()
    flash(_("Correction sent to your manager."), "success")
    return redirect(url_for("attendance.corrections"), code=303)


@bp.route("/attendance/corrections/<int:corr_id>/file")
@login_only
def correction_file(corr_id: int):
    corr = get_or_404(Correction, corr_id)
    mine = corr.employee_id == current_user.employee_id
    if not (mine or is_manager_of(current_user, corr.employee) or can(current_user, "attendance.view_all")):
        abort(404)
    if corr.file_id is None:
        abort(404)
    from portal.core import uploads
    f = db.session.get(uploads.StoredFile, corr.file_id)
    audit.record("attendance.correction_file_viewed", corr, {"file_id": corr.file_id})
    db.session.commit()
    return uploads.download(f)


# ---------------------------------------------------------------- approvals (managers)

@bp.route("/attendance/approvals")
@login_only
def approvals():
    leaves, corrs = services.pending_for(current_user)
    return render("attendance/approvals.html", leaves=leaves, corrections=corrs, kinds=KIND_LABELS,
                  form=DecisionForm())


def _decision(form: DecisionForm) -> bool:
    if not form.validate_on_submit() or form.decision.data not in ("approve", "reject"):
        abort(400)
    return form.decision.data == "approve"


@bp.route("/attendance/leave/<int:leave_id>/decide", methods=["POST"])
@login_only
def leave_decide(leave_id: int):
    lv = db.session.scalar(select(LeaveRequest).where(LeaveRequest.id == leave_id).with_for_update(of=LeaveRequest))
    if lv is None:
        abort(404)
    approve = _decision(DecisionForm())
    if not services.can_decide(current_user, lv.employee):
        abort(403)
    try:
        services.decide_leave(lv, current_user, approve, DecisionForm().note.data or "")
    except services.AttendanceError as exc:
        flash(_msg(exc), "error")
        return redirect(url_for("attendance.approvals"), code=303)
    db.session.commit()
    flash(_("Leave approved.") if approve else _("Leave rejected."), "success")
    return redirect(url_for("attendance.approvals"), code=303)


@bp.route("/attendance/corrections/<int:corr_id>/decide", methods=["POST"])
@login_only
def correction_decide(corr_id: int):
    corr = db.session.scalar(select(Correction).where(Correction.id == corr_id).with_for_update(of=Correction))
    if corr is None:
        abort(404)
    approve = _decision(DecisionForm())
    if not services.can_decide(current_user, corr.employee):
        abort(403)
    try:
        services.decide_correction(corr, current_user, approve, DecisionForm().note.data or "")
    except services.AttendanceError as exc:
        flash(_msg(exc), "error")
        return redirect(url_for("attendance.approvals"), code=303)
    db.session.commit()
    flash(_("Correction approved; the day is updated.") if approve else _("Correction rejected."), "success")
    return redirect(url_for("attendance.approvals"), code=303)


# ---------------------------------------------------------------- team

@bp.route("/attendance/team")
@require("attendance.team")
def team():
    day = services.today()
    rows = reports.team_today(current_user, day)
    counts = {k: sum(1 for r in rows if r["state"] == k) for k in ("in", "out", "none", "leave", "absent")}
    counts["late"] = sum(1 for r in rows if r["late"])
    # the totals count everyone; the table shows a page (a phone cannot use hundreds of rows, and rendering
    # them was most of the page's time for a big department)
    number, per_page = page_arg(50)
    pages = max(1, -(-len(rows) // per_page))
    number = min(number, pages)
    page = Page(rows[(number - 1) * per_page:number * per_page], number, per_page, len(rows))
    return render("attendance/team.html", "attendance/_team_today.html", rows=page.items, page=page,
                  counts=counts, day=day, labels=STATUS_LABELS)


@bp.route("/attendance/team/month")
@require("attendance.team")
def team_month():
    m = reports.parse_month(request.args.get("month"), services.today())
    page, per_page = page_arg(25)
    pg, days, grid, kinds = reports.team_month(current_user, m, page, per_page)
    return render("attendance/team_month.html", page=pg, days=days, grid=grid, kinds=kinds, month=m,
                  prev=reports.shift_month(m, -1), next=reports.shift_month(m, 1), labels=STATUS_LABELS)


# ---------------------------------------------------------------- HR

@bp.route("/attendance/hr")
@require("attendance.view_all")
def hr_days():
    from portal.org.services import department_choices
    flt = reports.parse_filter(request.args, services.today())
    page, per_page = page_arg(50)
    pg = paginate(reports.days_query(flt, current_user), page, per_page, scalars=False)
    return render("attendance/hr.html", "attendance/_hr_table.html", page=pg, flt=flt, labels=STATUS_LABELS,
                  departments=department_choices(blank=_("All departments")),
                  export_args={k: v for k, v in request.args.items() if k != "page"})


@bp.route("/attendance/hr/export")
@require("attendance.view_all")
def hr_export():
    flt = reports.parse_filter(request.args, services.today())
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(400)
    rows = reports.export_rows(flt, current_user)
    body = reports.to_xlsx(rows) if fmt == "xlsx" else reports.to_csv(rows)
    audit.record("attendance.exported", ("attendance_days", "filter"),
                 {"format": fmt, "department": flt.department_id, "status": flt.status,
                  "start": flt.start.isoformat(), "end": flt.end.isoformat(), "q": flt.q})
    db.session.commit()
    mime = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx"
            else "text/csv; charset=utf-8")
    return Response(body, content_type=mime, headers={
        "Content-Disposition": f'attachment; filename="attendance-{flt.start}-{flt.end}.{fmt}"'})


@bp.route("/attendance/anomalies")
@require("attendance.view_all")
def anomalies():
    page, per_page = page_arg(50)
    status = request.args.get("status", "open")
    stmt = select(Anomaly).order_by(Anomaly.risk.desc(), Anomaly.detected_on.desc(), Anomaly.id.desc())
    if status in ("open", "resolved"):
        stmt = stmt.where(Anomaly.status == status)
    return render("attendance/anomalies.html", page=paginate(stmt, page, per_page), labels=ANOMALY_LABELS,
                  current=status, form=ResolveForm())


@bp.route("/attendance/anomalies/<int:anomaly_id>/resolve", methods=["POST"])
@require("attendance.view_all")
def anomaly_resolve(anomaly_id: int):
    a = get_or_404(Anomaly, anomaly_id)
    form = ResolveForm()
    if not form.validate_on_submit():
        flash(_("Say what happened before closing the alert."), "error")
        return redirect(url_for("attendance.anomalies"), code=303)
    scan.resolve(a, current_user, form.note.data)
    db.session.commit()
    flash(_("Alert closed."), "success")
    return redirect(url_for("attendance.anomalies"), code=303)


@bp.route("/attendance/trend/<int:emp_id>")
@login_only
def trend(emp_id: int):
    emp = get_or_404(Employee, emp_id)
    if not (emp.id == current_user.employee_id or is_manager_of(current_user, emp)
            or can(current_user, "attendance.view_all")):
        abort(404)
    end = reports.parse_month(request.args.get("month"), services.today())
    points = reports.trend(emp.id, end)
    if emp.id != current_user.employee_id:
        audit.record("attendance.trend_viewed", ("employees", emp.id), {"month": end.isoformat()})
        db.session.commit()
    return render("attendance/trend.html", emp=emp, points=points, chart=reports.chart(points))


# ---------------------------------------------------------------- HR: rules, calendar, settings

def _minutes(t: dt.time | None) -> int | None:
    return None if t is None else t.hour * 60 + t.minute


def _time(m: int | None) -> dt.time | None:
    return None if m is None else dt.time(m // 60 % 24, m % 60)


@bp.route("/attendance/rules")
@require("attendance.manage")
def rules():
    services.default_rule()
    db.session.commit()
    all_rules = db.session.scalars(select(AttendanceRule).order_by(AttendanceRule.name)).all()
    members = db.session.scalars(select(RuleMember)).all()
    return render("attendance/rules.html", rules=all_rules, members=members, kinds=RULE_KIND_LABELS)


def _rule_values(form: RuleForm) -> dict:
    return {"name": form.name.data, "kind": form.kind.data, "is_default": bool(form.is_default.data),
            "start_minute": _minutes(form.start.data), "end_minute": _minutes(form.end.data),
            "grace_minutes": form.grace_minutes.data, "early_grace_minutes": form.early_grace_minutes.data,
            "break_start_minute": _minutes(form.break_start.data), "break_minutes": form.break_minutes.data,
            "restrict_place": bool(form.restrict_place.data), "ip_ranges": form.ip_ranges.data or "",
            "allow_outside": bool(form.allow_outside.data), "correctable": ",".join(form.correctable.data or []),
            "corrections_per_month": form.corrections_per_month.data,
            "correction_deadline_day": form.correction_deadline_day.data}


def _rule_form_page(form, rule, members_form=None, status=200):
    from portal.org.services import department_choices
    mf = members_form or MembersForm()
    mf.departments.choices = [(int(v), label) for v, label in department_choices()]
    if rule is not None and members_form is None:
        ms = db.session.scalars(select(RuleMember).where(RuleMember.rule_id == rule.id)).all()
        mf.departments.data = [m.department_id for m in ms if m.department_id]
        emp_ids = [m.employee_id for m in ms if m.employee_id]
        nos = db.session.scalars(select(Employee.emp_no).where(Employee.id.in_(emp_ids))).all() if emp_ids else []
        mf.employees.data = "\n".join(nos)
    return render("attendance/rule_form.html", form=form, rule=rule, members_form=mf, status=status)


@bp.route("/attendance/rules/new", methods=["GET", "POST"])
@require("attendance.manage")
def rule_new():
    form = RuleForm()
    if request.method == "GET":
        form.start.data, form.end.data = dt.time(9), dt.time(18)
        form.correctable.data = ["missing", "absent", "late", "early"]
    if form.validate_on_submit():
        try:
            rule = services.save_rule(None, _rule_values(form), current_user)
        except services.AttendanceError as exc:
            db.session.rollback()
            form.name.errors = [_msg(exc)]
            return _rule_form_page(form, None, status=422)
        db.session.commit()
        flash(_("Rule saved."), "success")
        return redirect(url_for("attendance.rule_edit", rule_id=rule.id), code=303)
    return _rule_form_page(form, None, status=422 if request.method == "POST" else 200)


@bp.route("/attendance/rules/<int:rule_id>", methods=["GET", "POST"])
@require("attendance.manage")
def rule_edit(rule_id: int):
    rule = get_or_404(AttendanceRule, rule_id)
    form = RuleForm()
    if request.method == "GET":
        form = RuleForm(obj=rule)
        form.start.data, form.end.data = _time(rule.start_minute), _time(rule.end_minute)
        form.break_start.data = _time(rule.break_start_minute)
        form.correctable.data = [c for c in rule.correctable.split(",") if c]
    if form.validate_on_submit():
        try:
            services.save_rule(rule, _rule_values(form), current_user)
        except services.AttendanceError as exc:
            db.session.rollback()
            form.name.errors = [_msg(exc)]
            return _rule_form_page(form, rule, status=422)
        db.session.commit()
        flash(_("Rule saved."), "success")
        return redirect(url_for("attendance.rule_edit", rule_id=rule.id), code=303)
    return _rule_form_page(form, rule, status=422 if request.method == "POST" else 200)


@bp.route("/attendance/rules/<int:rule_id>/members", methods=["POST"])
@require("attendance.manage")
def rule_members(rule_id: int):
    rule = get_or_404(AttendanceRule, rule_id)
    from portal.org.services import department_choices
    mf = MembersForm()
    mf.departments.choices = [(int(v), label) for v, label in department_choices()]
    if not mf.validate_on_submit():
        return _rule_form_page(RuleForm(obj=rule), rule, mf, 422)
    try:
        services.set_members(rule, mf.departments.data or [], _tokens(mf.employees.data), current_user)
    except services.AttendanceError as exc:
        db.session.rollback()
        mf.employees.errors = [_msg(exc)]
        form = RuleForm(obj=rule)
        form.start.data, form.end.data = _time(rule.start_minute), _time(rule.end_minute)
        return _rule_form_page(form, rule, mf, 422)
    db.session.commit()
    flash(_("Members saved."), "success")
    return redirect(url_for("attendance.rule_edit", rule_id=rule.id), code=303)


def _settings_page(form=None, site_form=None, shift_form=None, assign_form=None, range_form=None, status=200):
    cfg = services.settings()
    if form is None:
        form = SettingsForm(obj=cfg)
        form.alert_channels.data = [c for c in cfg.alert_channels.split(",") if c]
        form.escalation_channels.data = [c for c in cfg.escalation_channels.split(",") if c]
        nos = db.session.scalars(select(Employee.emp_no).join(Exemption, Exemption.employee_id == Employee.id)
                                 .order_by(Employee.emp_no)).all()
        form.exemptions.data = "\n".join(nos)
    shifts = db.session.scalars(select(Shift).order_by(Shift.code)).all()
    assign_form = assign_form or AssignForm()
    assign_form.shift.choices = [("", _("Rest day"))] + [(s.code, f"{s.code} {s.name}") for s in shifts]
    db.session.commit()
    return render("attendance/settings.html", form=form, site_form=site_form or SiteForm(),
                  shift_form=shift_form or ShiftForm(), assign_form=assign_form,
                  range_form=range_form or RangeForm(), shifts=shifts,
                  sites=db.session.scalars(select(WorkSite).order_by(WorkSite.name)).all(), status=status)


@bp.route("/attendance/settings", methods=["GET", "POST"])
@require("attendance.manage")
def settings():
    if request.method == "GET":
        return _settings_page()
    form = SettingsForm()
    if not form.validate_on_submit():
        return _settings_page(form, status=422)
    try:
        services.set_exemptions(_tokens(form.exemptions.data), current_user)
    except services.AttendanceError as exc:
        db.session.rollback()
        form.exemptions.errors = [_msg(exc)]
        return _settings_page(form, status=422)
    services.save_settings({
        "geofence_enabled": bool(form.geofence_enabled.data),
        "escalate_after_days": form.escalate_after_days.data,
        "late_count_threshold": form.late_count_threshold.data,
        "late_rise_threshold": form.late_rise_threshold.data,
        "alert_channels": ",".join(form.alert_channels.data or ["inapp"]),
        "escalation_channels": ",".join(form.escalation_channels.data or ["inapp"])}, current_user)
    db.session.commit()
    flash(_("Settings saved."), "success")
    return redirect(url_for("attendance.settings"), code=303)


@bp.route("/attendance/sites", methods=["POST"])
@require("attendance.manage")
def site_add():
    form = SiteForm()
    if not form.validate_on_submit():
        return _settings_page(site_form=form, status=422)
    try:
        services.save_site({"name": form.name.data, "latitude": form.latitude.data,
                            "longitude": form.longitude.data, "radius_m": form.radius_m.data}, current_user)
    except services.AttendanceError as exc:
        db.session.rollback()
        form.name.errors = [_msg(exc)]
        return _settings_page(site_form=form, status=422)
    db.session.commit()
    flash(_("Work site saved."), "success")
    return redirect(url_for("attendance.settings"), code=303)


@bp.route("/attendance/shifts", methods=["POST"])
@require("attendance.manage")
def shift_add():
    form = ShiftForm()
    if not form.validate_on_submit():
        return _settings_page(shift_form=form, status=422)
    if db.session.scalar(select(Shift.id).where(Shift.code == form.code.data.strip())):
        form.code.errors = [_("This code is taken.")]
        return _settings_page(shift_form=form, status=422)
    shift = Shift(code=form.code.data.strip(), name=form.name.data.strip(), start_minute=_minutes(form.start.data),
                  end_minute=_minutes(form.end.data), grace_minutes=form.grace_minutes.data,
                  break_minutes=form.break_minutes.data)
    db.session.add(shift)
    db.session.flush()
    audit.record("attendance.shift_created", shift, {"code": shift.code})
    db.session.commit()
    flash(_("Shift saved."), "success")
    return redirect(url_for("attendance.settings"), code=303)


@bp.route("/attendance/shifts/assign", methods=["POST"])
@require("attendance.manage")
def shift_assign():
    form = AssignForm()
    form.shift.choices = [("", "")] + [(s, s) for s in db.session.scalars(select(Shift.code))]
    if not form.validate_on_submit():
        return _settings_page(assign_form=form, status=422)
    try:
        n = services.assign_shift(_tokens(form.employees.data), form.shift.data, form.start_date.data,
                                  form.end_date.data, current_user)
    except services.AttendanceError as exc:
        db.session.rollback()
        form.employees.errors = [_msg(exc)]
        return _settings_page(assign_form=form, status=422)
    db.session.commit()
    flash(_("%(n)s day(s) scheduled.", n=n), "success")
    return redirect(url_for("attendance.settings"), code=303)


@bp.route("/attendance/recompute", methods=["POST"])
@require("attendance.manage")
def recompute_start():
    form = RangeForm()
    if not form.validate_on_submit() or form.end_date.data < form.start_date.data:
        form.start_date.errors = list(form.start_date.errors) + [_("Choose a valid date range.")]
        return _settings_page(range_form=form, status=422)
    task = tasks.start("attendance.recompute", current_user, "portal.attendance.services.recompute_task",
                       form.start_date.data.isoformat(), form.end_date.data.isoformat())
    audit.record("attendance.recompute_started", task, {"start": form.start_date.data.isoformat(),
                                                        "end": form.end_date.data.isoformat()})
    db.session.commit()
    return redirect(url_for("notify.task", task_id=task.id), code=303)


@bp.route("/attendance/calendar")
@require("attendance.manage")
def calendar():
    try:
        year = int(request.args.get("year") or services.today().year)
    except ValueError:
        year = services.today().year
    days = db.session.scalars(select(CalendarDay).where(
        CalendarDay.day.between(dt.date(year, 1, 1), dt.date(year, 12, 31))).order_by(CalendarDay.day)).all()
    return render("attendance/calendar.html", year=year, days=days, year_form=YearForm(year=year),
                  day_form=CalendarDayForm())


@bp.route("/attendance/calendar/import", methods=["POST"])
@require("attendance.manage")
def calendar_import():
    form = YearForm()
    if not form.validate_on_submit():
        flash(_("Enter a year."), "error")
        return redirect(url_for("attendance.calendar"), code=303)
    try:
        n = services.import_official_year(form.year.data, current_user)
    except services.AttendanceError as exc:
        flash(_msg(exc), "error")
        return redirect(url_for("attendance.calendar", year=form.year.data), code=303)
    db.session.commit()
    flash(_("%(n)s holidays and make-up working days loaded for %(year)s.", n=n, year=form.year.data), "success")
    return redirect(url_for("attendance.calendar", year=form.year.data), code=303)


@bp.route("/attendance/calendar/day", methods=["POST"])
@require("attendance.manage")
def calendar_day_set():
    form = CalendarDayForm()
    if not form.validate_on_submit():
        flash(_("Enter a date and a kind."), "error")
        return redirect(url_for("attendance.calendar"), code=303)
    services.set_calendar_day(form.day.data, form.kind.data, form.name.data or "", current_user)
    db.session.commit()
    flash(_("Calendar updated. Recompute the summary for past dates if needed."), "success")
    return redirect(url_for("attendance.calendar", year=form.day.data.year), code=303)


@bp.route("/attendance/calendar/day/delete", methods=["POST"])
@require("attendance.manage")
def calendar_day_delete():
    form = CalendarDayForm()
    form.kind.data = form.kind.data or "holiday"
    day = reports._date_arg(request.form.get("day"))
    if not ConsentForm().validate_on_submit() or day is None:
        abort(400)
    services.delete_calendar_day(day, current_user)
    db.session.commit()
    flash(_("Calendar updated."), "success")
    return redirect(url_for("attendance.calendar", year=day.year), code=303)
