"""User-facing texts for OrgError codes and employee statuses."""
from flask_babel import lazy_gettext as _l

STATUS_LABELS = {
    "active": _l("Active"),
    "notice": _l("On notice"),
    "left": _l("Left"),
}

ERRORS = {
    "emp_no_required": _l("Enter the employee number."),
    "emp_no_taken": _l("Another employee already has this number."),
    "name_required": _l("Enter the name."),
    "department_required": _l("Choose a department."),
    "hire_date_required": _l("Enter the hire date."),
    "unknown_department": _l("This department does not exist."),
    "unknown_position": _l("This position does not exist."),
    "unknown_manager": _l("No employee has this number."),
    "self_manager": _l("An employee cannot be their own manager."),
    "manager_cycle": _l("This manager reports (directly or indirectly) to this employee: that would be a loop."),
    "bad_mobile": _l("Enter a valid mobile number, e.g. 13812345678."),
    "bad_email": _l("Enter a valid e-mail address."),
    "bad_status": _l("Choose a status."),
    "probation_before_hire": _l("The probation end date cannot be before the hire date."),
    "contract_end_before_start": _l("The contract end date cannot be before the contract start date."),
    "dept_name_required": _l("Enter a department name."),
    "dept_name_taken": _l("A department with this name already exists at this place in the tree."),
    "dept_code_taken": _l("Another department already has this code."),
    "dept_cycle": _l("A department cannot move under itself or under one of its sub-departments."),
    "dept_has_children": _l("The department still has sub-departments. Move or delete them first."),
    "dept_has_people": _l("The department still has employees (%(n)s). Move them first."),
    "unknown_head": _l("No employee has this number."),
    "position_name_required": _l("Enter a position name."),
    "position_name_taken": _l("A position with this name already exists."),
    "position_code_taken": _l("Another position already has this code."),
    "position_in_use": _l("The position is held by employees (%(n)s). Change their position first."),
}


def message(exc) -> str:
    text = ERRORS.get(exc.code)
    if text is None:
        return exc.code
    return str(text) % exc.params if exc.params else str(text)
