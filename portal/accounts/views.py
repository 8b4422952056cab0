"""Sign-in, sign-out, password, language; admin account management."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, or_, select

from portal import LANGUAGES
from portal.accounts import bp, services
from portal.accounts.forms import LoginForm, OverrideForm, PasswordChangeForm, UserCreateForm
from portal.accounts.messages import message
from portal.core.db import db, get_or_404, utcnow
from portal.core.models import PermissionOverride, Role, User
from portal.core.security import PERMISSIONS, login_only, public, require
from portal.core.ui import company_tz, htmx_redirect, page_arg, paginate, register_nav, render

register_nav("accounts.users", _l("Accounts"), "users.manage", order=90, group="admin")


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        result = services.authenticate(
            form.username.data, form.password.data, request.remote_addr or "",
            current_app.config["LOGIN_MAX_FAILURES"], current_app.config["LOGIN_WINDOW_MINUTES"])
        if result.user is not None:
            chosen = session.get("locale")
            session.clear()  # no session fixation: a fresh session after sign-in
            login_user(result.user, remember=form.remember.data)
            if result.user.locale:
                session["locale"] = result.user.locale
            elif chosen:
                session["locale"] = chosen
            if result.user.must_change_password:
                flash(_("Please choose your own password now."), "info")
                return redirect(url_for("accounts.password"))
            return redirect(_safe_next(request.args.get("next")))
        # One message whether the account exists, is disabled, or throttled: reveals nothing.
        error = _("Sign-in failed. Check the username and password, or wait a few minutes.")
        status = 429 if result.throttled else 401
    elif request.method == "POST":
        error = _("Enter your username and password.")
        status = 422
    return render("accounts/login.html", form=form, error=error, status=status)


@bp.route("/logout", methods=["POST"])
@login_only
def logout():
    # Sessions are signed cookies: only rotating the token makes a copied session or remember cookie
    # worthless after signing out (this ends the user's other sessions too).
    services.logout_everywhere(current_user, current_user, "logout")
    db.session.commit()
    logout_user()
    session.clear()
    return htmx_redirect(url_for("accounts.login"))


@bp.route("/logout-everywhere", methods=["POST"])
@login_only
def logout_everywhere():
    services.logout_everywhere(current_user, current_user, "self")
    db.session.commit()
    logout_user()
    session.clear()
    return htmx_redirect(url_for("accounts.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_only
def password():
    form = PasswordChangeForm()
    status = 200
    if form.validate_on_submit():
        try:
            services.change_password(current_user, form.current.data, form.new.data, form.confirm.data)
        except services.AccountError as exc:
            form.new.errors = list(form.new.errors) + [message(exc)]
            status = 422
        else:
            db.session.commit()
            # The token rotated: every other session is out; this one signs in again with the new id.
            login_user(current_user._get_current_object())
            flash(_("Your password was changed. Other devices were signed out."), "success")
            return htmx_redirect(url_for("home.index"))
    elif request.method == "POST":
        status = 422
    return render("accounts/password.html", "accounts/_password_form.html", form=form, status=status)


@bp.route("/lang", methods=["POST"])
@public
def set_language():
    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    session["locale"] = lang
    if current_user.is_authenticated:
        services.set_locale(current_user, lang)
        db.session.commit()
    return htmx_redirect(_safe_next(request.form.get("next") or request.referrer and urlsplit(request.referrer).path))


# ---------------------------------------------------------------- admin: accounts

@bp.route("/admin/users")
@require("users.manage")
def users():
    page, per_page = page_arg()
    q = (request.args.get("q") or "").strip()
    stmt = select(User).order_by(User.username)
    if q:
        like = f"%{q.lower()}%"
        from portal.org.models import Employee
        stmt = stmt.outerjoin(User.employee).where(or_(
            func.lower(User.username).like(like), Employee.name.like(f"%{q}%"),
            Employee.name_pinyin.like(like), Employee.name_initials.like(like)))
    result = paginate(stmt, page, per_page)
    return render("accounts/users.html", "accounts/_users_table.html", page=result, q=q,
                  form=UserCreateForm())


@bp.route("/admin/users", methods=["POST"])
@require("users.manage")
def user_create():
    form = UserCreateForm()
    if not form.validate_on_submit():
        flash(_("Check the highlighted fields."), "error")
        return redirect(url_for("accounts.users"), code=303)
    employee_id = None
    if form.employee_no.data:
        from portal.org.models import Employee
        employee_id = db.session.scalar(select(Employee.id).where(Employee.emp_no == form.employee_no.data.strip()))
        if employee_id is None:
            flash(message(services.AccountError("unknown_employee")), "error")
            return redirect(url_for("accounts.users"), code=303)
    try:
        user, initial = services.create_user(form.username.data, None, current_user, ["employee"],
                                             employee_id=employee_id)
    except services.AccountError as exc:
        flash(message(exc), "error")
        return redirect(url_for("accounts.users"), code=303)
    db.session.commit()
    flash(_("Account %(name)s created. Initial password (shown once): %(pw)s", name=user.username,
            pw=initial), "success")
    return redirect(url_for("accounts.user_detail", user_id=user.id), code=303)


@bp.route("/admin/users/<int:user_id>")
@require("users.manage")
def user_detail(user_id: int):
    user = get_or_404(User, user_id)
    roles = db.session.scalars(select(Role).order_by(Role.id)).all()
    overrides = db.session.scalars(select(PermissionOverride).where(PermissionOverride.user_id == user.id)
                                   .order_by(PermissionOverride.created_at.desc())).all()
    form = OverrideForm()
    form.permission.choices = [(code, f"{code} — {label}") for code, label in sorted(PERMISSIONS.items())]
    return render("accounts/user_detail.html", user=user, roles=roles, overrides=overrides, form=form,
                  now=utcnow())


@bp.route("/admin/users/<int:user_id>/roles", methods=["POST"])
@require("users.manage")
def user_roles(user_id: int):
    user = get_or_404(User, user_id)
    try:
        services.set_roles(user, request.form.getlist("roles"), current_user)
    except services.AccountError as exc:
        flash(message(exc), "error")
        return redirect(url_for("accounts.user_detail", user_id=user.id), code=303)
    db.session.commit()
    flash(_("Roles saved. The user's open sessions were ended."), "success")
    return redirect(url_for("accounts.user_detail", user_id=user.id), code=303)


@bp.route("/admin/users/<int:user_id>/active", methods=["POST"])
@require("users.manage")
def user_active(user_id: int):
    user = get_or_404(User, user_id)
    if user.id == current_user.id:
        flash(_("You cannot disable your own account."), "error")
    else:
        services.set_active(user, request.form.get("active") == "1", current_user,
                            request.form.get("reason", "")[:500])
        db.session.commit()
        flash(_("Saved."), "success")
    return redirect(url_for("accounts.user_detail", user_id=user.id), code=303)


@bp.route("/admin/users/<int:user_id>/logout", methods=["POST"])
@require("users.manage")
def user_force_logout(user_id: int):
    user = get_or_404(User, user_id)
    services.logout_everywhere(user, current_user, "admin")
    db.session.commit()
    flash(_("All sessions of %(name)s were ended.", name=user.username), "success")
    if user.id == current_user.id:
        return htmx_redirect(url_for("accounts.login"))
    return redirect(url_for("accounts.user_detail", user_id=user.id), code=303)


@bp.route("/admin/users/<int:user_id>/overrides", methods=["POST"])
@require("users.manage")
def user_override_add(user_id: int):
    user = get_or_404(User, user_id)
    form = OverrideForm()
    form.permission.choices = [(code, code) for code in PERMISSIONS]
    if not form.validate_on_submit():
        flash(_("Choose a permission and give a reason."), "error")
        return redirect(url_for("accounts.user_detail", user_id=user.id), code=303)
    expires = None
    if form.expires_at.data:
        expires = form.expires_at.data.replace(tzinfo=company_tz()).astimezone(dt.timezone.utc)
    try:
        services.add_override(user, form.permission.data, form.effect.data, current_user,
                              form.reason.data, expires)
    except services.AccountError as exc:
        flash(message(exc), "error")
        return redirect(url_for("accounts.user_detail", user_id=user.id), code=303)
    db.session.commit()
    flash(_("Override saved."), "success")
    return redirect(url_for("accounts.user_detail", user_id=user.id), code=303)


@bp.route("/admin/overrides/<int:override_id>/revoke", methods=["POST"])
@require("users.manage")
def override_revoke(override_id: int):
    ov = get_or_404(PermissionOverride, override_id)
    services.revoke_override(ov, current_user, request.form.get("reason", "")[:500])
    db.session.commit()
    flash(_("Override revoked."), "success")
    return redirect(url_for("accounts.user_detail", user_id=ov.user_id), code=303)
