"""Client record pages: list (scoped by role), detail, create/edit, orders, contacts, receivables,
contact history, CSV export. Every view and export is audited; frozen permissions are refused and
audited (perms.business)."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.core.db import db, get_or_404
from portal.core.security import effective_permissions, login_only
from portal.core.ui import page_arg, paginate, register_nav, render
from portal.home.views import register_card
from portal.offboarding import clients as svc
from portal.offboarding.forms import (CHANNEL_LABELS, ClientForm, ContactForm, InteractionForm, OrderForm,
                                      ReceivableForm)
from portal.offboarding.models import Client
from portal.offboarding.perms import business

bp = Blueprint("clients", __name__)

register_nav("clients.index", _l("Clients"), None, order=70)
register_card(None, _l("Client records"), _l("Your clients, contacts, orders and receivables."), "clients.index")

ERRORS = {
    "name_required": _l("A name is required."),
    "no_employee": _l("Your account is not linked to an employee record, so it cannot own clients."),
    "order_no_required": _l("An order number is required."),
    "amount_required": _l("An amount is required."),
    "bad_amount": _l("Enter an amount in yuan with at most two decimals, e.g. 1234.50."),
    "bad_channel": _l("Choose a channel."),
    "summary_required": _l("Say what was discussed."),
    "bad_date": _l("Enter a date as YYYY-MM-DD."),
}


def _msg(exc: svc.ClientError) -> str:
    return str(ERRORS.get(exc.code, exc.code))


def _client_or_404(client_id: int) -> Client:
    client = get_or_404(Client, client_id)
    if not svc.can_view(current_user, client):
        abort(404)
    return client


@bp.route("/clients")
@login_only
def index():
    page, per_page = page_arg()
    q = request.args.get("q", "").strip()[:100]
    result = paginate(svc.scope_stmt(current_user, q), page, per_page)
    svc.record_list_view(current_user, result.items, q)
    db.session.commit()
    return render("clients/index.html", "clients/_list.html", page=result, q=q, yuan=svc.yuan)


@bp.route("/clients/new")
@business("clients.create")
def new():
    return render("clients/form.html", form=ClientForm(), client=None)


@bp.route("/clients", methods=["POST"])
@business("clients.create")
def create():
    form = ClientForm()
    if not form.validate_on_submit():
        return render("clients/form.html", form=form, client=None, status=422)
    try:
        client = svc.create_client(current_user, form.name.data, form.contract_no.data, form.contract_end.data,
                                   form.preferences.data)
    except svc.ClientError as exc:
        form.name.errors = list(form.name.errors) + [_msg(exc)]
        db.session.rollback()
        return render("clients/form.html", form=form, client=None, status=422)
    db.session.commit()
    flash(_("Client created."), "success")
    return redirect(url_for("clients.show", client_id=client.id), code=303)


def _detail(client: Client, status: int = 200, **forms):
    ctx = dict(order_form=OrderForm(), contact_form=ContactForm(), receivable_form=ReceivableForm(),
               interaction_form=InteractionForm())
    ctx.update(forms)
    perms = effective_permissions(current_user)
    return render("clients/detail.html", client=client, yuan=svc.yuan, channels=CHANNEL_LABELS,
                  may_order="orders.create" in perms, may_edit="clients.edit" in perms, status=status, **ctx)


@bp.route("/clients/<int:client_id>")
@login_only
def show(client_id: int):
    client = _client_or_404(client_id)
    svc.record_view(current_user, client)
    db.session.commit()
    return _detail(client)


@bp.route("/clients/<int:client_id>/edit")
@business("clients.edit")
def edit(client_id: int):
    client = _client_or_404(client_id)
    return render("clients/form.html", form=ClientForm(obj=client), client=client)


@bp.route("/clients/<int:client_id>/edit", methods=["POST"])
@business("clients.edit")
def update(client_id: int):
    client = _client_or_404(client_id)
    form = ClientForm()
    if not form.validate_on_submit():
        return render("clients/form.html", form=form, client=client, status=422)
    try:
        svc.update_client(current_user, client, form.name.data, form.contract_no.data, form.contract_end.data,
                          form.preferences.data)
    except svc.ClientError as exc:
        db.session.rollback()
        form.name.errors = list(form.name.errors) + [_msg(exc)]
        return render("clients/form.html", form=form, client=client, status=422)
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("clients.show", client_id=client.id), code=303)


@bp.route("/clients/<int:client_id>/orders", methods=["POST"])
@business("orders.create")
def order_create(client_id: int):
    client = _client_or_404(client_id)
    form = OrderForm()
    if not form.validate_on_submit():
        return _detail(client, 422, order_form=form)
    try:
        svc.add_order(current_user, client, form.order_no.data, form.amount.data, form.description.data)
    except svc.ClientError as exc:
        db.session.rollback()
        getattr(form, exc.field or "order_no").errors = [_msg(exc)]
        return _detail(client, 422, order_form=form)
    db.session.commit()
    flash(_("Order recorded."), "success")
    return redirect(url_for("clients.show", client_id=client.id), code=303)


@bp.route("/clients/<int:client_id>/contacts", methods=["POST"])
@business("clients.edit")
def contact_add(client_id: int):
    client = _client_or_404(client_id)
    form = ContactForm()
    if not form.validate_on_submit():
        return _detail(client, 422, contact_form=form)
    svc.add_contact(current_user, client, form.name.data, form.title.data, form.phone.data, form.email.data)
    db.session.commit()
    flash(_("Contact added."), "success")
    return redirect(url_for("clients.show", client_id=client.id), code=303)


@bp.route("/clients/<int:client_id>/receivables", methods=["POST"])
@business("clients.edit")
def receivable_add(client_id: int):
    client = _client_or_404(client_id)
    form = ReceivableForm()
    if not form.validate_on_submit():
        return _detail(client, 422, receivable_form=form)
    try:
        svc.add_receivable(current_user, client, form.reference.data, form.amount.data, form.due_date.data)
    except svc.ClientError as exc:
        db.session.rollback()
        form.amount.errors = [_msg(exc)]
        return _detail(client, 422, receivable_form=form)
    db.session.commit()
    flash(_("Receivable added."), "success")
    return redirect(url_for("clients.show", client_id=client.id), code=303)


@bp.route("/clients/<int:client_id>/interactions", methods=["POST"])
@business("clients.edit")
def interaction_add(client_id: int):
    client = _client_or_404(client_id)
    form = InteractionForm()
    if not form.validate_on_submit():
        return _detail(client, 422, interaction_form=form)
    svc.log_interaction(current_user, client, form.channel.data, form.summary.data)
    db.session.commit()
    flash(_("Contact recorded."), "success")
    return redirect(url_for("clients.show", client_id=client.id), code=303)


@bp.route("/clients/export.csv")
@business("clients.export")
def export():
    q = request.args.get("q", "").strip()[:100]
    body, _n = svc.export_csv(current_user, q)
    db.session.commit()
    return Response(body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="clients.csv"'})
