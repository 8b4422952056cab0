"""OKR pages: my OKRs, the alignment tree, objectives and key results, check-ins, team report, cycles,
early warnings. Thin: parse -> permission -> services -> commit -> render/redirect."""
from __future__ import annotations


from flask import abort, flash, redirect, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.core import audit, tasks
from portal.core.db import db, get_or_404
from portal.core.forms import add_field_error
from portal.core.security import can, check, employee_scope, login_only, managed_department_ids, require
from portal.core.ui import register_nav, render
from portal.home.views import register_card
from portal.org.models import Department, Employee
from portal.performance import access, bp, services  # noqa: F401  (access registers permissions)
from portal.performance.forms import (CYCLE_KIND_LABELS, FREQUENCY_LABELS, KIND_LABELS, LEVEL_LABELS,
                                      WEEKDAY_LABELS, CheckInForm, CycleForm, CycleSettingsForm, KeyResultForm,
                                      ObjectiveForm)
from portal.performance.models import Cycle, KeyResult, Objective

tasks.register_kind("perf.okr_export", _l("OKR export"))

register_nav("performance.my_okrs", _l("OKRs"), None, order=50)
register_nav("performance.reviews", _l("Performance"), None, order=52)
register_card(None, _l("My OKRs"), _l("Objectives, key results and monthly check-ins."), "performance.my_okrs")
register_card("okr.team", _l("Team OKR report"), _l("Completion of your team and who has not checked in."),
              "performance.team")
register_card("perf.manage", _l("Performance cycles"), _l("Open and close OKR and review cycles."),
              "performance.cycles")

ERRORS = {
    "not_a_number": _l("Enter a number."),
    "too_small": _l("The value must be at least %(minimum)s."),
    "bad_kind": _l("Choose a type."),
    "bad_year": _l("Enter a year between 2000 and 2100."),
    "bad_quarter": _l("Enter a quarter from 1 to 4."),
    "bad_month": _l("Enter a month from 1 to 12."),
    "bad_checkin_day": _l("Choose a day from 1 to 28."),
    "cycle_exists": _l("The cycle %(name)s already exists."),
    "conflict": _l("Someone else changed this first. Reload and try again."),
    "nothing_pending": _l("Nothing is waiting for approval any more."),
    "cycle_not_open": _l("The cycle is not open."),
    "bad_level": _l("Choose a level."),
    "required": _l("This field is required."),
    "forbidden": _l("You may not do this at this level."),
    "parent_other_cycle": _l("The parent objective belongs to another cycle."),
    "parent_level": _l("An objective aligns to a company or team objective (company objectives align to "
                       "nothing)."),
    "parent_cycle": _l("This alignment would make a loop."),
    "yesno_value": _l("Enter 0 (no) or 1 (yes)."),
    "whole_number": _l("Enter a whole number."),
    "milestones_done": _l("Enter a whole number of milestones from 0 to %(total)s."),
    "target_equals_start": _l("The target must differ from the start value."),
    "confidence": _l("Confidence is a whole number from 1 to 10."),
    "bad_frequency": _l("Choose monthly, every two weeks or weekly."),
    "bad_weekday": _l("Choose a weekday."),
    "bad_response_days": _l("Enter a number of days from 1 to 60."),
    "cycle_closed": _l("The cycle is closed."),
    "milestones_required": _l("List the milestones, one per line."),
    "milestone_too_long": _l("A milestone has at most 200 characters."),
    "milestone_duplicate": _l("The milestone \"%(title)s\" is listed twice."),
    "too_many_milestones": _l("At most %(max)s milestones."),
    "bad_milestone": _l("Tick milestones of this key result only."),
    "kind_locked": _l("The type cannot change once there are check-ins."),
    "archived": _l("This was archived and cannot change any more."),
    "has_children": _l("%(n)s objective(s) are aligned to this one. Align them elsewhere or delete them "
                       "first."),
}


def msg(exc: services.PerfError) -> str:
    text = str(ERRORS.get(exc.code, exc.code))
    return text % exc.params if exc.params else text


def _cycle_arg() -> Cycle | None:
    cid = request.args.get("cycle", type=int)
    if cid:
        return get_or_404(Cycle, cid)
    return services.default_cycle()


def progress_class(p) -> str:
    if p is None:
        return "w-0"
    return f"w-{int(round(float(p) * 20)) * 5}"


bp.add_app_template_filter(progress_class, "perf_w")


# ---------------------------------------------------------------- my OKRs and the tree

@bp.route("/okr")
@login_only
def my_okrs():
    cycle = _cycle_arg()
    mine, pending = services.my_objectives(current_user, cycle) if cycle else ([], [])
    return render("performance/my.html", cycle=cycle, cycles=services.cycles(), nodes=mine, pending=pending,
                  kinds=KIND_LABELS, levels=LEVEL_LABELS)


@bp.route("/okr/tree")
@login_only
def tree():
    cycle = _cycle_arg()
    dept = request.args.get("dept", type=int)
    page = services.alignment_tree(current_user, cycle, dept, max(1, request.args.get("page", 1, type=int))) \
        if cycle else None
    from portal.org.services import department_choices
    depts = department_choices()
    return render("performance/tree.html", cycle=cycle, cycles=services.cycles(),
                  roots=page.items if page else [], page=page, depts=depts, dept=dept, kinds=KIND_LABELS,
                  levels=LEVEL_LABELS)


@bp.route("/okr/tree/node/<int:objective_id>")
@login_only
def tree_node(objective_id: int):
    """One node's content for the tree (loaded with htmx when the node is opened): its key results and
    aligned objectives, collapsed; ``offset``: the next aligned objectives only ("show more")."""
    offset = max(0, request.args.get("offset", 0, type=int))
    n = services.tree_node(current_user, objective_id, offset)
    if n is None or not can(current_user, "okr.view", n.objective):
        abort(404)
    return render("performance/_tree_node.html", n=n, offset=offset, levels=LEVEL_LABELS)


# ---------------------------------------------------------------- objectives

def _objective_form(cycle: Cycle | None, form: ObjectiveForm | None = None) -> ObjectiveForm:
    form = form or ObjectiveForm()
    open_cycles = services.cycles(("open",))
    form.cycle_id.choices = [(c.id, c.name) for c in open_cycles]
    perms = access._perms(current_user)
    levels = ["individual"]
    if "perf.manage" in perms or ("okr.team" in perms and managed_department_ids(current_user)):
        levels.insert(0, "team")
    if "perf.manage" in perms:
        levels.insert(0, "company")
    form.level.choices = [(lv, LEVEL_LABELS[lv]) for lv in levels]
    dq = select(Department).order_by(Department.name)
    if "perf.manage" not in perms:
        dq = dq.where(Department.id.in_(managed_department_ids(current_user) or {-1}))
    form.department_id.choices = [(0, "—")] + [(d.id, d.name) for d in db.session.scalars(dq)]
    eq = select(Employee).where(Employee.status != "left").order_by(Employee.name)
    cond = None if "perf.manage" in perms else employee_scope(current_user)
    if cond is not None:
        eq = eq.where(cond)
    form.owner_id.choices = [(0, _("Myself"))] + [(e.id, f"{e.name} ({e.emp_no})") for e in db.session.scalars(eq)]
    parents = []
    if cycle is not None:
        parents = db.session.scalars(select(Objective).where(
            Objective.cycle_id == cycle.id, Objective.level.in_(("company", "team")),
            Objective.status == "active").order_by(Objective.level, Objective.title)).all()
    form.parent_id.choices = [(0, "—")] + [(o.id, f"{LEVEL_LABELS[o.level]} · {o.title}") for o in parents]
    return form


@bp.route("/okr/objectives/new")
@login_only
def new_objective():
    cycle = _cycle_arg()
    form = _objective_form(cycle)
    if cycle is not None and request.method == "GET":
        form.cycle_id.data = cycle.id
        form.parent_id.data = request.args.get("parent", 0, type=int)
        if request.args.get("level") in LEVEL_LABELS:
            form.level.data = request.args["level"]
    return render("performance/objective_form.html", form=form, cycle=cycle, objective=None)


@bp.route("/okr/objectives", methods=["POST"])
@login_only
def create_objective():
    cycle = db.session.get(Cycle, request.form.get("cycle_id", type=int) or 0)
    form = _objective_form(cycle)
    if not form.validate_on_submit() or cycle is None:
        return render("performance/objective_form.html", form=form, cycle=cycle, objective=None, status=422)
    dept = db.session.get(Department, form.department_id.data) if form.department_id.data else None
    owner = db.session.get(Employee, form.owner_id.data) if form.owner_id.data else None
    parent = db.session.get(Objective, form.parent_id.data) if form.parent_id.data else None
    try:
        obj = services.create_objective(current_user, cycle, form.level.data, form.title.data,
                                        description=form.description.data or "", owner=owner, department=dept,
                                        parent=parent, link_weight=form.link_weight.data)
    except services.PerfError as exc:
        db.session.rollback()
        target = getattr(form, exc.field, None) if exc.field else None
        (target or form.title).errors = list((target or form.title).errors) + [msg(exc)]
        return render("performance/objective_form.html", form=form, cycle=cycle, objective=None, status=422)
    db.session.commit()
    flash(_("Objective saved.") if obj.status == "active"
          else _("Objective saved. It waits for your manager's approval."), "success")
    return redirect(url_for("performance.objective", objective_id=obj.id), code=303)


@bp.route("/okr/objectives/<int:objective_id>/edit")
@login_only
def edit_objective(objective_id: int):
    obj = get_or_404(Objective, objective_id)
    check("okr.edit", obj)
    form = _objective_form(obj.cycle, ObjectiveForm(obj=obj))
    form.parent_id.data = obj.parent_id or 0
    return render("performance/objective_form.html", form=form, cycle=obj.cycle, objective=obj)


@bp.route("/okr/objectives/<int:objective_id>/edit", methods=["POST"])
@login_only
def update_objective(objective_id: int):
    obj = get_or_404(Objective, objective_id)
    check("okr.edit", obj)
    form = _objective_form(obj.cycle)
    form.level.data, form.cycle_id.data = obj.level, obj.cycle_id
    status = 422
    if form.validate_on_submit():
        parent = db.session.get(Objective, form.parent_id.data) if form.parent_id.data else None
        try:
            services.update_objective(current_user, obj, form.title.data, form.description.data or "", parent,
                                      form.link_weight.data)
        except services.PerfError as exc:
            db.session.rollback()
            add_field_error(form, exc.field, "title", msg(exc))
        else:
            db.session.commit()
            flash(_("Objective saved."), "success")
            return redirect(url_for("performance.objective", objective_id=obj.id), code=303)
    return render("performance/objective_form.html", form=form, cycle=obj.cycle, objective=obj, status=status)


@bp.route("/okr/objectives/<int:objective_id>")
@login_only
def objective(objective_id: int):
    obj = db.session.scalar(select(Objective).options(selectinload(Objective.key_results))
                            .where(Objective.id == objective_id))
    if obj is None or not can(current_user, "okr.view", obj):
        abort(404)
    return _render_objective(obj, KeyResultForm())


def _render_objective(obj: Objective, kr_form: KeyResultForm, status: int = 200):
    children = db.session.scalars(select(Objective).where(Objective.parent_id == obj.id,
                                                          Objective.status != "rejected")).all()
    # the roll-up over everything aligned below, at any depth (a child's own aligned objectives count)
    res = services.subtree_rollup([obj.id], obj.cycle_id)
    visible_children = [c for c in children if can(current_user, "okr.view", c)]
    parent = db.session.get(Objective, obj.parent_id) if obj.parent_id else None
    return render("performance/objective.html", obj=obj, res=res, children=visible_children, parent=parent,
                  form=kr_form, kinds=KIND_LABELS, levels=LEVEL_LABELS, status=status)


@bp.route("/okr/objectives/<int:objective_id>/krs", methods=["POST"])
@login_only
def create_kr(objective_id: int):
    obj = get_or_404(Objective, objective_id)
    check("okr.edit", obj)
    form = KeyResultForm()
    if form.validate_on_submit():
        try:
            kr = services.add_key_result(current_user, obj, form.title.data, form.kind.data, form.unit.data,
                                         form.start_value.data, form.target_value.data, form.weight.data,
                                         milestones=form.milestones.data)
        except services.PerfError as exc:
            db.session.rollback()
            add_field_error(form, exc.field, "title", msg(exc))
        else:
            db.session.commit()
            flash(_("Key result added.") if kr.status == "active"
                  else _("Key result added. It waits for your manager's approval."), "success")
            return redirect(url_for("performance.objective", objective_id=obj.id), code=303)
    obj = db.session.get(Objective, objective_id)
    return _render_objective(obj, form, 422)


@bp.route("/okr/objectives/<int:objective_id>/approve", methods=["POST"])
@login_only
def approve_objective(objective_id: int):
    obj = get_or_404(Objective, objective_id)
    check("okr.approve", obj)
    ok = request.form.get("decision", "approve") != "reject"
    try:
        services.approve_objective(current_user, obj, ok)
    except services.Conflict as exc:
        db.session.rollback()
        flash(msg(exc), "error")
        return render("errors/error.html", code=409, message=msg(exc), status=409)
    db.session.commit()
    flash(_("Approved.") if ok else _("Rejected."), "success")
    nxt = request.form.get("next") or ""
    if not (nxt.startswith("/") and not nxt.startswith("//")):
        nxt = url_for("performance.objective", objective_id=obj.id)
    return redirect(nxt, code=303)


@bp.route("/okr/objectives/<int:objective_id>/delete", methods=["POST"])
@login_only
def delete_objective(objective_id: int):
    """Delete, or archive when check-ins exist (kept for history, out of every roll-up)."""
    obj = get_or_404(Objective, objective_id)
    check("okr.edit", obj)
    cycle_id = obj.cycle_id
    try:
        outcome = services.delete_objective(current_user, obj)
    except services.PerfError as exc:
        db.session.rollback()
        flash(msg(exc), "error")
        obj = db.session.get(Objective, objective_id)
        return _render_objective(obj, KeyResultForm(), 409)
    db.session.commit()
    if outcome == "archived":
        flash(_("The objective has check-ins, so it was archived: it no longer counts, its history stays."),
              "success")
        return redirect(url_for("performance.objective", objective_id=objective_id), code=303)
    flash(_("Objective deleted."), "success")
    return redirect(url_for("performance.my_okrs", cycle=cycle_id), code=303)


# ---------------------------------------------------------------- key results and check-ins

def _kr_or_404(kr_id: int) -> KeyResult:
    kr = db.session.get(KeyResult, kr_id)
    if kr is None or not can(current_user, "okr.view", kr.objective):
        abort(404)
    return kr


def _render_kr(kr: KeyResult, form: CheckInForm, status: int = 200, milestone_error: str = ""):
    history = services.kr_history(kr)
    chart = services.chart_points(kr, history)
    progress = services.rollup.kr_progress(kr.kind, kr.start_value, kr.target_value, kr.current_value)
    return render("performance/kr.html", "performance/_kr_body.html", kr=kr, history=history, chart=chart,
                  progress=progress, form=form, kinds=KIND_LABELS, status=status, milestone_error=milestone_error)


@bp.route("/okr/krs/<int:kr_id>")
@login_only
def key_result(kr_id: int):
    kr = _kr_or_404(kr_id)
    form = CheckInForm()
    form.value.data = f"{kr.current_value.normalize():f}"
    return _render_kr(kr, form)


@bp.route("/okr/krs/<int:kr_id>/checkins", methods=["POST"])
@login_only
def create_checkin(kr_id: int):
    kr = _kr_or_404(kr_id)
    check("okr.checkin", kr)
    form = CheckInForm()
    if form.validate_on_submit():
        try:
            services.check_in(current_user, kr, form.value.data, form.confidence.data, form.comment.data or "",
                              milestone_ids=request.form.getlist("milestone"))
        except services.PerfError as exc:
            db.session.rollback()
            if exc.field == "milestones":
                return _render_kr(db.session.get(KeyResult, kr_id), form, 422, milestone_error=msg(exc))
            add_field_error(form, exc.field, "value", msg(exc))
        else:
            db.session.commit()
            flash(_("Check-in saved."), "success")
            kr = db.session.get(KeyResult, kr_id)
            fresh = CheckInForm(formdata=None)
            fresh.value.data = f"{kr.current_value.normalize():f}"
            return _render_kr(kr, fresh)
    kr = db.session.get(KeyResult, kr_id)
    return _render_kr(kr, form, 422)


def _kr_form_for(kr: KeyResult) -> KeyResultForm:
    form = KeyResultForm(obj=kr)
    form.start_value.data = fmt_num(kr.start_value)
    form.target_value.data = fmt_num(kr.target_value)
    form.weight.data = fmt_num(kr.weight)
    form.milestones.data = "\n".join(m.title for m in kr.milestones)
    return form


@bp.route("/okr/krs/<int:kr_id>/edit")
@login_only
def edit_kr(kr_id: int):
    kr = _kr_or_404(kr_id)
    check("okr.edit", kr.objective)
    if kr.status == "archived":
        abort(409)
    return render("performance/kr_form.html", kr=kr, form=_kr_form_for(kr))


@bp.route("/okr/krs/<int:kr_id>/edit", methods=["POST"])
@login_only
def update_kr(kr_id: int):
    kr = _kr_or_404(kr_id)
    check("okr.edit", kr.objective)
    form = KeyResultForm()
    if form.validate_on_submit():
        try:
            services.update_key_result(current_user, kr, form.title.data, form.kind.data, form.unit.data,
                                       form.start_value.data, form.target_value.data, form.weight.data,
                                       milestones=form.milestones.data)
        except services.PerfError as exc:
            db.session.rollback()
            add_field_error(form, exc.field, "title", msg(exc))
        else:
            db.session.commit()
            kr = db.session.get(KeyResult, kr_id)
            flash(_("Key result saved. It waits for your manager's approval.") if kr.status == "pending"
                  else _("Key result saved."), "success")
            return redirect(url_for("performance.key_result", kr_id=kr_id), code=303)
    return render("performance/kr_form.html", kr=db.session.get(KeyResult, kr_id), form=form, status=422)


@bp.route("/okr/krs/<int:kr_id>/delete", methods=["POST"])
@login_only
def delete_kr(kr_id: int):
    """Delete, or archive when check-ins exist (kept for history, out of every roll-up)."""
    kr = _kr_or_404(kr_id)
    check("okr.edit", kr.objective)
    objective_id = kr.objective_id
    try:
        outcome = services.delete_key_result(current_user, kr)
    except services.PerfError as exc:
        db.session.rollback()
        flash(msg(exc), "error")
        return _render_kr(db.session.get(KeyResult, kr_id), CheckInForm(), 409)
    db.session.commit()
    flash(_("The key result has check-ins, so it was archived: it no longer counts, its history stays.")
          if outcome == "archived" else _("Key result deleted."), "success")
    return redirect(url_for("performance.objective", objective_id=objective_id), code=303)


# ---------------------------------------------------------------- team report and export

def _report_access() -> None:
    if not (can(current_user, "okr.team") or can(current_user, "perf.view_all")):
        abort(403)


@bp.route("/okr/team")
@login_only
def team():
    _report_access()
    cycle = _cycle_arg()
    report = services.team_report(current_user, cycle) if cycle else None
    return render("performance/team.html", cycle=cycle, cycles=services.cycles(), report=report)


@bp.route("/okr/team/export", methods=["POST"])
@require("perf.export")
def team_export():
    """Start the XLSX export as a background task; its page shows the progress and the download."""
    cycle = get_or_404(Cycle, request.form.get("cycle", type=int) or 0)
    task = tasks.start("perf.okr_export", current_user, "portal.performance.jobs.team_export_task", cycle.id,
                       str(get_locale() or "zh_Hans_CN"))
    audit.record("okr.report_export_started", cycle, {"task_id": task.id, "format": "xlsx"})
    db.session.commit()
    return redirect(url_for("notify.task", task_id=task.id), code=303)


# ---------------------------------------------------------------- cycles (HR)

def _cycles_page(form: CycleForm, status: int = 200):
    return render("performance/cycles.html", cycles=services.cycles(), form=form, kinds=CYCLE_KIND_LABELS,
                  frequencies=FREQUENCY_LABELS, weekdays=dict(WEEKDAY_LABELS), status=status)


@bp.route("/performance/cycles")
@require("perf.manage")
def cycles():
    return _cycles_page(CycleForm())


@bp.route("/performance/cycles", methods=["POST"])
@require("perf.manage")
def create_cycle():
    form = CycleForm()
    if form.validate_on_submit():
        try:
            services.create_cycle(current_user, form.kind.data, form.year.data, form.number.data,
                                  form.checkin_day.data, form.checkin_frequency.data, form.checkin_weekday.data,
                                  form.response_days.data)
        except services.PerfError as exc:
            db.session.rollback()
            add_field_error(form, exc.field, "year", msg(exc))
        else:
            db.session.commit()
            flash(_("Cycle created. Open it when objectives may be set."), "success")
            return redirect(url_for("performance.cycles"), code=303)
    return _cycles_page(form, 422)


@bp.route("/performance/cycles/<int:cycle_id>/settings")
@require("perf.manage")
def cycle_settings(cycle_id: int):
    cycle = get_or_404(Cycle, cycle_id)
    return render("performance/cycle_settings.html", cycle=cycle, form=CycleSettingsForm(obj=cycle))


@bp.route("/performance/cycles/<int:cycle_id>/settings", methods=["POST"])
@require("perf.manage")
def update_cycle(cycle_id: int):
    cycle = get_or_404(Cycle, cycle_id)
    form = CycleSettingsForm()
    if form.validate_on_submit():
        try:
            services.update_cycle_settings(current_user, cycle, form.checkin_day.data, form.checkin_frequency.data,
                                           form.checkin_weekday.data, form.response_days.data)
        except services.PerfError as exc:
            db.session.rollback()
            add_field_error(form, exc.field, "checkin_frequency", msg(exc))
        else:
            db.session.commit()
            flash(_("Cycle settings saved."), "success")
            return redirect(url_for("performance.cycles"), code=303)
    return render("performance/cycle_settings.html", cycle=get_or_404(Cycle, cycle_id), form=form, status=422)


@bp.route("/performance/cycles/<int:cycle_id>/<any(open, close):action>", methods=["POST"])
@require("perf.manage")
def cycle_state(cycle_id: int, action: str):
    cycle = get_or_404(Cycle, cycle_id)
    try:
        (services.open_cycle if action == "open" else services.close_cycle)(cycle, current_user)
    except services.Conflict as exc:
        db.session.rollback()
        return render("errors/error.html", code=409, message=msg(exc), status=409)
    db.session.commit()
    flash(_("Cycle opened.") if action == "open" else _("Cycle closed."), "success")
    return redirect(url_for("performance.cycles"), code=303)


# ---------------------------------------------------------------- early warnings

@bp.route("/performance/warnings")
@login_only
def warnings():
    _report_access()
    rows = services.warnings_for(current_user)
    import json
    return render("performance/warnings.html", rows=[(w, json.loads(w.data or "{}")) for w in rows])


def fmt_num(value) -> str:
    """A Decimal without trailing zeros (12.5000 -> 12.5); money keeps two decimals."""
    if value is None:
        return "—"
    return f"{value.normalize():f}" if hasattr(value, "normalize") else str(value)


def fmt_pct(p) -> str:
    return "—" if p is None else f"{float(p) * 100:.0f}%"


bp.add_app_template_filter(fmt_num, "perf_num")
bp.add_app_template_filter(fmt_pct, "perf_pct")


def fmt_titles(raw: str) -> str:
    """A check-in's JSON list of milestones done, as text ("—" for none)."""
    import json
    try:
        titles = json.loads(raw or "[]")
    except ValueError:
        return ""
    return " · ".join(f"✓ {t}" for t in titles) if titles else "—"


bp.add_app_template_filter(fmt_titles, "perf_titles")
