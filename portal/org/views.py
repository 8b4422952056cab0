"""People and organisation pages: thin views (parse -> check access -> service -> commit -> render)."""
from __future__ import annotations

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from portal.accounts.messages import message as account_message
from portal.accounts.services import AccountError
from portal.core.db import db, get_or_404
from portal.core.forms import add_field_error
from portal.core.security import can, check, login_only, register_permissions, require
from portal.core.ui import (htmx_redirect, is_partial_request, local_today, page_arg, paginate, register_nav,
                            render)
from portal.home.views import register_card
from portal.org import bp, importer, services
from portal.org.forms import (DepartmentForm, DepartmentHeadForm, DepartmentMoveForm, DepartmentRenameForm,
                              EmployeeForm, ImportForm, PositionForm)
from portal.org.messages import STATUS_LABELS, message
from portal.org.models import STATUSES, Department, Employee, Position

# Only shows the "My team" entry to managers; what a team is comes from the org structure (scope).
register_permissions({"people.team": _l("See the \"My team\" page")}, {"manager": ["people.team"]})

register_nav("org.people", _l("People"), None, order=10)
register_nav("org.me", _l("My profile"), None, order=11)
register_nav("org.team", _l("My team"), "people.team", order=12)
register_nav("org.departments", _l("Departments"), "org.manage", order=40)
register_nav("org.positions", _l("Positions"), "org.manage", order=41)
register_nav("org.people_upload", _l("Import employees"), "people.import", order=42)

register_card("people.edit", _l("People"), _l("Search, add and edit employees; export lists."),
              "org.people")
register_card("people.import", _l("Import employees"),
              _l("Upload a CSV or XLSX file; nothing is saved unless every row is valid."), "org.people_upload")
register_card("org.manage", _l("Departments"), _l("The department tree, heads and positions."),
              "org.departments")
register_card("people.team", _l("My team"), _l("The people who report to you."), "org.team")


def _int_arg(name: str) -> int | None:
    try:
        value = int(request.args.get(name) or 0)
    except ValueError:
        return None
    return value or None


def _filter() -> services.PeopleFilter:
    status = request.args.get("status") or ""
    return services.PeopleFilter(q=(request.args.get("q") or "").strip()[:80],
                                 department_id=_int_arg("department"),
                                 status=status if status in STATUSES else "",
                                 position_id=_int_arg("position"))


def _list_context(flt: services.PeopleFilter) -> dict:
    if is_partial_request():  # the results partial needs no filter choices
        return dict(flt=flt)
    return dict(flt=flt, statuses=STATUS_LABELS,
                departments=services.department_choices(blank=_("All departments")),
                positions=services.position_choices(_("All positions")))


# ---------------------------------------------------------------- people lists

@bp.route("/people")
@login_only
def people():
    flt = _filter()
    page, per_page = page_arg()
    result = paginate(services.people_query(current_user, flt), page, per_page)
    return render("org/people.html", "org/_people_results.html", page=result, endpoint="org.people",
                  sees_all=services.sees_all(current_user), **_list_context(flt))


@bp.route("/team")
@login_only
def team():
    flt = _filter()
    page, per_page = page_arg()
    result = paginate(services.team_query(current_user, flt), page, per_page)
    return render("org/people.html", "org/_people_results.html", page=result, endpoint="org.team",
                  team=True, **_list_context(flt))


@bp.route("/people/export.csv")
@login_only
def people_export():
    flt = _filter()
    body, _count = services.export_csv(current_user, flt, current_user)
    db.session.commit()
    resp = Response(body, mimetype="text/csv")
    resp.headers["Content-Disposition"] = "attachment; filename=people.csv"
    return resp


# ---------------------------------------------------------------- one person

def _person_page(emp: Employee):
    account = None
    if can(current_user, "people.edit") or can(current_user, "users.manage"):
        account = services.account_of(emp)
    return render("org/person.html", emp=emp, path=services.department_path(emp.department),
                  reports=services.direct_reports(emp, current_user), account=account,
                  is_self=emp.id == current_user.employee_id, today=local_today(),
                  manager_visible=emp.manager is not None and can(current_user, "people.view", emp.manager))


@bp.route("/people/<int:emp_id>")
@login_only
def person(emp_id: int):
    emp = get_or_404(Employee, emp_id)
    check("people.view", emp)
    if emp.id != current_user.employee_id:
        services.record_view(emp, current_user)
        db.session.commit()
    return _person_page(emp)


@bp.route("/me")
@login_only
def me():
    if not current_user.employee_id:
        return render("org/person.html", emp=None)
    emp = get_or_404(Employee, current_user.employee_id)
    return _person_page(emp)


def _employee_form(emp: Employee | None = None) -> EmployeeForm:
    form = EmployeeForm(obj=emp) if emp is not None and request.method == "GET" else EmployeeForm()
    form.department_id.choices = services.department_choices(blank=_("— choose —"))
    form.position_id.choices = services.position_choices(_("— none —"))
    if emp is not None and request.method == "GET":
        form.department_id.data = str(emp.department_id or "")
        form.position_id.data = str(emp.position_id or "")
        form.manager_no.data = emp.manager.emp_no if emp.manager else ""
    return form


def _employee_data(form: EmployeeForm) -> services.EmployeeData:
    return services.EmployeeData(
        emp_no=form.emp_no.data, name=form.name.data,
        department_id=int(form.department_id.data) if form.department_id.data else None,
        manager_no=form.manager_no.data or "",
        position_id=int(form.position_id.data) if form.position_id.data else None,
        mobile=form.mobile.data or "", email=form.email.data or "", hire_date=form.hire_date.data,
        probation_end=form.probation_end.data, contract_start=form.contract_start.data,
        contract_end=form.contract_end.data, status=form.status.data)


def _form_error(form: EmployeeForm, exc: services.OrgError) -> None:
    add_field_error(form, exc.field, "emp_no", message(exc))


def _render_form(form: EmployeeForm, emp: Employee | None, status: int = 200):
    return render("org/person_form.html", "org/_person_form.html", form=form, emp=emp, status=status)


@bp.route("/people/new", methods=["GET", "POST"])
@require("people.edit")
def person_new():
    form = _employee_form()
    if request.method == "GET":
        return _render_form(form, None)
    if not form.validate_on_submit():
        return _render_form(form, None, 422)
    try:
        emp = services.create_employee(_employee_data(form), current_user)
        initial = None
        if form.create_account.data:
            user, initial = services.create_account(emp, form.username.data, current_user)
        db.session.commit()
    except services.OrgError as exc:
        db.session.rollback()
        _form_error(form, exc)
        return _render_form(form, None, 422)
    except AccountError as exc:
        db.session.rollback()
        form.username.errors = list(form.username.errors) + [account_message(exc)]
        return _render_form(form, None, 422)
    except IntegrityError:
        db.session.rollback()
        abort(409)
    flash(_("Employee %(name)s saved.", name=emp.name), "success")
    if initial:
        flash(_("Account %(name)s created. Initial password (shown once): %(pw)s", name=user.username,
                pw=initial), "success")
    return htmx_redirect(url_for("org.person", emp_id=emp.id))


@bp.route("/people/<int:emp_id>/edit", methods=["GET", "POST"])
@require("people.edit")
def person_edit(emp_id: int):
    emp = get_or_404(Employee, emp_id)
    check("people.view", emp)
    form = _employee_form(emp)
    del form.create_account, form.username
    if request.method == "GET":
        return _render_form(form, emp)
    if not form.validate_on_submit():
        return _render_form(form, emp, 422)
    try:
        changes = services.update_employee(emp, _employee_data(form), current_user)
        db.session.commit()
    except services.OrgError as exc:
        db.session.rollback()
        _form_error(form, exc)
        return _render_form(form, emp, 422)
    except IntegrityError:
        db.session.rollback()
        abort(409)
    flash(_("Saved.") if changes else _("Nothing changed."), "success")
    return htmx_redirect(url_for("org.person", emp_id=emp.id))


@bp.route("/people/<int:emp_id>/account", methods=["POST"])
@require("people.edit")
def person_account(emp_id: int):
    emp = get_or_404(Employee, emp_id)
    check("people.view", emp)
    try:
        user, initial = services.create_account(emp, request.form.get("username", "")[:80], current_user)
        db.session.commit()
    except AccountError as exc:
        db.session.rollback()
        flash(account_message(exc), "error")
        return redirect(url_for("org.person", emp_id=emp.id), code=303)
    flash(_("Account %(name)s created. Initial password (shown once): %(pw)s", name=user.username,
            pw=initial), "success")
    return redirect(url_for("org.person", emp_id=emp.id), code=303)


# ---------------------------------------------------------------- departments

def _flash_errors(exc: services.OrgError | None, form) -> None:
    if exc is not None:
        flash(message(exc), "error")
        return
    for errors in form.errors.values():
        for e in errors:
            flash(str(e), "error")


def _tree_page(status: int = 200, form: DepartmentForm | None = None):
    form = form or DepartmentForm()
    form.parent_id.choices = services.department_choices(blank=_("— top level —"))
    return render("org/departments.html", tree=services.department_tree(), form=form, status=status)


def _department_page(dept: Department, status: int = 200):
    move = DepartmentMoveForm(parent_id=str(dept.parent_id or ""))
    move.parent_id.choices = services.department_choices(exclude_subtree_of=dept.id, blank=_("— top level —"))
    return render("org/department.html", dept=dept, path=services.department_path(dept),
                  rename=DepartmentRenameForm(name=dept.name, code=dept.code or ""), move=move,
                  head=DepartmentHeadForm(head_no=dept.head.emp_no if dept.head else ""),
                  children=sorted(dept.children, key=lambda d: d.name),
                  people=services.count_in_department(dept.id, with_subtree=True), status=status)


def _dept_action(dept: Department, form, action):
    """Validate ``form``, run ``action()``; redirect on success, the page with the message and 422 if not."""
    if form is not None and not form.validate_on_submit():
        db.session.rollback()
        _flash_errors(None, form)
        return _department_page(dept, 422)
    try:
        action()
    except services.OrgError as exc:
        db.session.rollback()
        _flash_errors(exc, None)
        return _department_page(dept, 422)
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("org.department", dept_id=dept.id), code=303)


@bp.route("/org/departments")
@require("org.manage")
def departments():
    return _tree_page()


@bp.route("/org/departments", methods=["POST"])
@require("org.manage")
def department_create():
    form = DepartmentForm()
    form.parent_id.choices = services.department_choices(blank="")
    exc = None
    if form.validate_on_submit():
        try:
            dept = services.create_department(form.name.data, form.code.data or "",
                                              int(form.parent_id.data) if form.parent_id.data else None,
                                              current_user)
        except services.OrgError as err:
            exc = err
        else:
            db.session.commit()
            flash(_("Department %(name)s created.", name=dept.name), "success")
            return redirect(url_for("org.departments"), code=303)
    db.session.rollback()
    if exc is not None:
        add_field_error(form, exc.field, "name", message(exc))
    return _tree_page(422, form)


@bp.route("/org/departments/<int:dept_id>")
@require("org.manage")
def department(dept_id: int):
    return _department_page(get_or_404(Department, dept_id))


@bp.route("/org/departments/<int:dept_id>/rename", methods=["POST"])
@require("org.manage")
def department_rename(dept_id: int):
    dept = get_or_404(Department, dept_id)
    form = DepartmentRenameForm()
    return _dept_action(dept, form, lambda: services.rename_department(
        dept, form.name.data, form.code.data or "", current_user))


@bp.route("/org/departments/<int:dept_id>/move", methods=["POST"])
@require("org.manage")
def department_move(dept_id: int):
    dept = get_or_404(Department, dept_id)
    form = DepartmentMoveForm()
    # Every department is a valid choice for the form; the service refuses loops with a clear message.
    form.parent_id.choices = services.department_choices(blank="")
    return _dept_action(dept, form, lambda: services.move_department(
        dept, int(form.parent_id.data) if form.parent_id.data else None, current_user))


@bp.route("/org/departments/<int:dept_id>/head", methods=["POST"])
@require("org.manage")
def department_head(dept_id: int):
    dept = get_or_404(Department, dept_id)
    form = DepartmentHeadForm()
    return _dept_action(dept, form, lambda: services.set_department_head(dept, form.head_no.data or "",
                                                                           current_user))


@bp.route("/org/departments/<int:dept_id>/delete", methods=["POST"])
@require("org.manage")
def department_delete(dept_id: int):
    dept = get_or_404(Department, dept_id)
    name = dept.name
    try:
        services.delete_department(dept, current_user)
    except services.OrgError as exc:
        db.session.rollback()
        _flash_errors(exc, None)
        return _department_page(dept, 422)
    db.session.commit()
    flash(_("Department %(name)s deleted.", name=name), "success")
    return redirect(url_for("org.departments"), code=303)


# ---------------------------------------------------------------- positions

def _positions_page(status: int = 200, form: PositionForm | None = None):
    return render("org/positions.html", positions=services.positions_with_counts(),
                  form=form or PositionForm(), status=status)


def _pos_done(exc: services.OrgError | None = None, form=None):
    if exc is None and (form is None or not form.errors):
        db.session.commit()
        flash(_("Saved."), "success")
        return redirect(url_for("org.positions"), code=303)
    db.session.rollback()
    _flash_errors(exc, form)
    return _positions_page(422)


@bp.route("/org/positions")
@require("org.manage")
def positions():
    return _positions_page()


@bp.route("/org/positions", methods=["POST"])
@require("org.manage")
def position_create():
    form = PositionForm()
    if not form.validate_on_submit():
        return _pos_done(form=form)
    try:
        services.create_position(form.name.data, form.code.data or "", current_user)
    except services.OrgError as exc:
        return _pos_done(exc)
    return _pos_done()


@bp.route("/org/positions/<int:pos_id>/rename", methods=["POST"])
@require("org.manage")
def position_rename(pos_id: int):
    pos = get_or_404(Position, pos_id)
    form = PositionForm()
    if not form.validate_on_submit():
        return _pos_done(form=form)
    try:
        services.rename_position(pos, form.name.data, form.code.data or "", current_user)
    except services.OrgError as exc:
        return _pos_done(exc)
    return _pos_done()


@bp.route("/org/positions/<int:pos_id>/delete", methods=["POST"])
@require("org.manage")
def position_delete(pos_id: int):
    pos = get_or_404(Position, pos_id)
    try:
        services.delete_position(pos, current_user)
    except services.OrgError as exc:
        return _pos_done(exc)
    return _pos_done()


# ---------------------------------------------------------------- import

def _import_page(form: ImportForm, status: int = 200, **extra):
    ctx = dict(form=form, max_rows=importer.MAX_ROWS, max_mb=importer.MAX_BYTES // (1024 * 1024),
               headers=importer.template_headers(), issues=None, file_error=None, unknown_columns=[])
    ctx.update(extra)
    return render("org/import.html", status=status, **ctx)


@bp.route("/people/import")
@require("people.import")
def people_upload():
    return _import_page(ImportForm())


@bp.route("/people/import", methods=["POST"])
@require("people.import")
def people_import():
    form = ImportForm()
    if not form.validate_on_submit():
        return _import_page(form, 422)
    upload = form.file.data
    content = upload.stream.read(importer.MAX_BYTES + 1)
    from portal.core import uploads
    try:
        # The name rules of every upload (no folders, control characters or very long names), and an
        # .xlsx is a zip: refuse a zip bomb before openpyxl inflates it. (CSV content is not sniffed here:
        # the importer also reads GB18030, which the generic text check would refuse.)
        filename = uploads.clean_name(upload.filename or "")
        if content[:4] == b"PK\x03\x04":
            uploads.detect_kind(content)
    except uploads.UploadError as exc:
        return _import_page(form, 422, file_error=uploads.upload_error_message(exc))
    try:
        table = importer.read_table(filename, content)
        outcome = services.import_employees(table, bool(form.update_existing.data), current_user, filename,
                                            content)
    except importer.ImportFileError as exc:
        db.session.rollback()
        return _import_page(form, 422, file_error=exc.message)
    if not outcome.validation.ok:
        db.session.rollback()
        return _import_page(form, 422, issues=outcome.validation.issues,
                            unknown_columns=outcome.validation.unknown_columns)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        abort(409)
    flash(_("Import done: %(created)s created, %(updated)s updated.", created=outcome.created,
            updated=outcome.updated), "success")
    if outcome.validation.unknown_columns:
        flash(_("Ignored columns: %(cols)s", cols=", ".join(outcome.validation.unknown_columns)), "info")
    return redirect(url_for("org.people"), code=303)


@bp.route("/people/import/template.csv")
@require("people.import")
def people_template():
    resp = Response(importer.csv_bytes(importer.template_headers(), []), mimetype="text/csv")
    resp.headers["Content-Disposition"] = "attachment; filename=employees-template.csv"
    return resp
