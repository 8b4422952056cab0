"""THE access matrix: every route of ``app.url_map`` x every role, with the expected outcome.

Checked by tests/security/test_access_matrix.py; a route missing here fails that test, so a new route
must be added here with its expected outcomes.

Roles (columns, in this order):
    employee   only the employee role; owns the seeded objects (see below) and reports to the manager
    manager    only the manager role; heads the employee's department (销售部)
    trainer    only the trainer role (authored the seeded course)
    hr         only the hr role
    admin      only the admin role
    left       an employee whose exit was processed by the revocation job (account disabled, token
               rotated, roles removed): the session is refused everywhere except public pages
    anonymous  nobody signed in

Where a URL has an id, it points at a real seeded object of the EMPLOYEE (their profile, leave,
correction, objective, key result, review, enrollment, attempt, acknowledgement, notice, notification,
client) except: offboarding case/items/steps/unfreeze request = the case of 离职中丁, a colleague of the
employee in the manager's department who is serving notice (successor: another colleague), so the
employee is NOT involved in it; background task = the manager's own export; everything in studio/org/
admin pages = the one seeded course/lesson/question/department/position/user.

Outcomes:
    ok      passed the access checks: 2xx, a redirect that is not to /login, or a validation/state
            answer (400, 409, 413, 422 — the harness sends a valid CSRF token and, for POSTs, only the
            fields in FORM below, so most allowed POSTs end in 422/409 and change nothing anyway;
            every request is rolled back)
    403     refused by a permission (@require or an explicit check)
    404     refused by hiding the object, or (noted per row) the object is legitimately absent
    hidden  refused by an object rule: 403 or 404 are both fine (the view decides whether to hide)
    login   302 to /login (htmx: 401 + HX-Redirect)
"""
from __future__ import annotations

ROLES = ("employee", "manager", "trainer", "hr", "admin", "left", "anonymous")
OK, LOGIN, HIDDEN = "ok", "login", "hidden"
OUTCOMES = {OK, LOGIN, HIDDEN, "403", "404"}
ALLOWED_INVALID = (400, 409, 413, 422)

# Which seeded object a URL argument points at, when the argument name alone is ambiguous.
ARGS = {
    ("training.answer_save", "item_id"): "item_id_attempt",
    ("offboarding.template_item_delete", "item_id"): "template_item_id",
    ("offboarding.item_confirm", "item_id"): "item_id_offb",
    ("offboarding.item_file", "item_id"): "item_id_offb",
    ("offboarding.item_submit", "item_id"): "item_id_offb",
    ("offboarding.item_waive", "item_id"): "item_id_offb",
}
LITERAL_ARGS = {"filename": "css/app.css", "job_id": "no-such-job", "which": "document", "action": "close"}

# Form fields sent with a POST (besides the CSRF token), so that the access check the view makes AFTER
# parsing its form is reached. "*" is for every role; a role key overrides it.
FORM = {
    "attendance.leave_decide": {"*": {"decision": "approve"}},
    "attendance.correction_decide": {"*": {"decision": "approve"}},
    "offboarding.clients_transfer": {"*": {"all": "1"}},
    "offboarding.unfreeze_approve": {"*": {"as": "hr"}, "manager": {"as": "manager"}},
    "offboarding.unfreeze_reject": {"*": {"reason": "不同意"}},
    "performance.team_export": {"*": {"cycle": "CYCLE_ID"}},
}

# ---------------------------------------------------------------- common rows
#                   employee manager trainer hr    admin | left  anonymous
PUBLIC            = "ok      ok      ok      ok    ok    | ok    ok"
SIGNED_IN         = "ok      ok      ok      ok    ok    | login login"
SIGNS_OUT         = "login   login   login   login login | login login"   # the answer IS the sign-in page
ADMIN_ONLY        = "403     403     403     403   ok    | login login"   # users.manage, ops.view
HR_ONLY           = "403     403     403     ok    403   | login login"
HR_ADMIN          = "403     403     403     ok    ok    | login login"
TEAM_HR           = "403     ok      403     ok    403   | login login"   # attendance.team
TEAM_HR_ADMIN     = "403     ok      403     ok    ok    | login login"   # okr team report / warnings
AUTHORS           = "403     403     ok      403   ok    | login login"   # training.author
ASSIGNERS         = "403     403     ok      ok    ok    | login login"   # training.assign
REPORTERS         = "403     ok      ok      ok    ok    | login login"   # training.reports
SELLERS           = "ok      ok      403     403   403   | login login"   # clients.create/edit/export, orders
OWNER_ONLY        = "ok      hidden  hidden  hidden hidden | login login"  # the employee's own thing
OWNER_MGR_HR_ADMIN = "ok     ok      hidden  ok    ok    | login login"   # own, manager, *.view_all
OWNER_MGR_HR      = "ok      ok      hidden  ok    hidden | login login"
OWNER_HR_ADMIN    = "ok      hidden  hidden  ok    ok    | login login"
OWNER_HR          = "ok      hidden  hidden  ok    hidden | login login"
RESIGNERS         = "ok      403     403     403   403   | login login"   # offboarding.resign (employee role)
# the colleague's offboarding case: the employee is not involved; the manager heads the leaver's
# department; HR manages; admin sees it (offboarding.view_all)
CASE_VIEW         = "hidden  ok      hidden  ok    ok    | login login"
CASE_MANAGE       = HR_ONLY                                                # offboarding.manage
CASE_EVIDENCE     = HR_ADMIN                                               # offboarding.view_all

MATRIX: dict[str, str] = {
    # ------------------------------------------------------------ platform
    "static GET":                                   PUBLIC,
    "home.health GET":                              PUBLIC,
    "home.index GET":                               SIGNED_IN,
    # ------------------------------------------------------------ accounts
    "accounts.login GET":                           PUBLIC,      # signed in: redirected home
    "accounts.login POST":                          PUBLIC,      # empty form: 422 / signed in: home
    "accounts.set_language POST":                   PUBLIC,
    "accounts.logout POST":                         SIGNS_OUT,
    "accounts.logout_everywhere POST":              SIGNS_OUT,
    "accounts.password GET":                        SIGNED_IN,
    "accounts.password POST":                       SIGNED_IN,
    "accounts.users GET":                           ADMIN_ONLY,
    "accounts.user_create POST":                    ADMIN_ONLY,
    "accounts.user_detail GET":                     ADMIN_ONLY,
    "accounts.user_active POST":                    ADMIN_ONLY,
    "accounts.user_force_logout POST":              ADMIN_ONLY,
    "accounts.user_override_add POST":              ADMIN_ONLY,
    "accounts.user_roles POST":                     ADMIN_ONLY,
    "accounts.override_revoke POST":                ADMIN_ONLY,
    # ------------------------------------------------------------ org (people)
    "org.me GET":                                   SIGNED_IN,
    "org.people GET":                               SIGNED_IN,   # scoped list (test_object_access)
    "org.people_export GET":                        SIGNED_IN,   # scoped: an employee exports only self
    "org.team GET":                                 SIGNED_IN,   # empty for people without reports
    "org.person GET":                               OWNER_MGR_HR_ADMIN,
    "org.person_new GET":                           HR_ONLY,
    "org.person_new POST":                          HR_ONLY,
    "org.person_edit GET":                          HR_ONLY,
    "org.person_edit POST":                         HR_ONLY,
    "org.person_account POST":                      HR_ONLY,
    "org.people_upload GET":                        HR_ONLY,
    "org.people_import POST":                       HR_ONLY,
    "org.people_template GET":                      HR_ONLY,
    "org.departments GET":                          HR_ADMIN,    # org.manage
    "org.department GET":                           HR_ADMIN,
    "org.department_create POST":                   HR_ADMIN,
    "org.department_delete POST":                   HR_ADMIN,
    "org.department_head POST":                     HR_ADMIN,
    "org.department_move POST":                     HR_ADMIN,
    "org.department_rename POST":                   HR_ADMIN,
    "org.positions GET":                            HR_ADMIN,
    "org.position_create POST":                     HR_ADMIN,
    "org.position_delete POST":                     HR_ADMIN,
    "org.position_rename POST":                     HR_ADMIN,
    # ------------------------------------------------------------ audit
    "audit.index GET":                              HR_ADMIN,
    "audit.verify GET":                             HR_ADMIN,
    "audit.seal POST":                              HR_ADMIN,
    "audit.export GET":                             HR_ADMIN,
    # ------------------------------------------------------------ notify, background tasks, ops
    "notify.inbox GET":                             SIGNED_IN,   # own inbox only (test_object_access)
    "notify.badge GET":                             SIGNED_IN,
    "notify.preferences GET":                       SIGNED_IN,
    "notify.preferences POST":                      SIGNED_IN,
    "notify.read_all POST":                         SIGNED_IN,
    "notify.show GET":                              OWNER_ONLY,
    "notify.read POST":                             OWNER_ONLY,
    # the manager's task: its owner, and operators (ops.view: admin, IT) who watch the queues; the
    # result file (an export of the owner's scope) only to its owner
    "notify.task GET":                              "hidden  ok  hidden  hidden  ok | login login",
    "notify.task_status GET":                       "hidden  ok  hidden  hidden  ok | login login",
    "notify.task_download GET":                     "hidden  ok  hidden  hidden  hidden | login login",
    "notify.ops GET":                               ADMIN_ONLY,
    "notify.requeue POST":                          ADMIN_ONLY,  # unknown job id: flash + redirect
    "notify.retry_notification POST":              ADMIN_ONLY,
    # ------------------------------------------------------------ notices (formal, HR)
    "notices.index GET":                            SIGNED_IN,   # own notices; HR: all
    "notices.show GET":                             OWNER_HR,    # recipient or notices.view_all
    "notices.acknowledge POST":                     OWNER_ONLY,  # only the recipient signs
    "notices.compose GET":                          HR_ONLY,
    "notices.compose POST":                         HR_ONLY,
    "notices.edit GET":                             HR_ONLY,     # sent already: redirect to the notice
    "notices.edit POST":                            HR_ONLY,
    "notices.send POST":                            HR_ONLY,
    "notices.evidence GET":                         HR_ONLY,     # notices.view_all (hr, legal)
    "notices.record_csv GET":                       HR_ONLY,
    # ------------------------------------------------------------ attendance
    "attendance.index GET":                         SIGNED_IN,
    "attendance.month GET":                         SIGNED_IN,
    "attendance.records GET":                       SIGNED_IN,   # own records
    "attendance.records_csv GET":                   SIGNED_IN,   # own records
    "attendance.clock POST":                        SIGNED_IN,
    "attendance.consent POST":                      SIGNED_IN,
    "attendance.leave GET":                         SIGNED_IN,
    "attendance.leave_submit POST":                 SIGNED_IN,
    "attendance.corrections GET":                   SIGNED_IN,
    "attendance.correction_submit POST":            SIGNED_IN,
    "attendance.approvals GET":                     SIGNED_IN,   # what waits for me (empty for most)
    "attendance.leave_cancel POST":                 OWNER_ONLY,
    # decided by the manager (or attendance.manage: HR); never by the requester
    "attendance.leave_decide POST":                 "403  ok  403  ok  403 | login login",
    "attendance.correction_decide POST":            "403  ok  403  ok  403 | login login",
    "attendance.correction_file GET":               OWNER_MGR_HR_ADMIN,
    "attendance.trend GET":                         OWNER_MGR_HR_ADMIN,
    "attendance.team GET":                          TEAM_HR,
    "attendance.team_month GET":                    TEAM_HR,
    "attendance.hr_days GET":                       HR_ADMIN,    # attendance.view_all
    "attendance.hr_export GET":                     HR_ADMIN,
    "attendance.anomalies GET":                     HR_ADMIN,
    "attendance.anomaly_resolve POST":              HR_ADMIN,
    "attendance.calendar GET":                      HR_ONLY,     # attendance.manage
    "attendance.calendar_day_set POST":             HR_ONLY,
    "attendance.calendar_day_delete POST":          HR_ONLY,
    "attendance.calendar_import POST":              HR_ONLY,
    "attendance.recompute_start POST":              HR_ONLY,
    "attendance.rules GET":                         HR_ONLY,
    "attendance.rule_new GET":                      HR_ONLY,
    "attendance.rule_new POST":                     HR_ONLY,
    "attendance.rule_edit GET":                     HR_ONLY,
    "attendance.rule_edit POST":                    HR_ONLY,
    "attendance.rule_members POST":                 HR_ONLY,
    "attendance.settings GET":                      HR_ONLY,
    "attendance.settings POST":                     HR_ONLY,
    "attendance.shift_add POST":                    HR_ONLY,
    "attendance.shift_assign POST":                 HR_ONLY,
    "attendance.site_add POST":                     HR_ONLY,
    # ------------------------------------------------------------ OKRs
    "performance.my_okrs GET":                      SIGNED_IN,
    "performance.tree GET":                         SIGNED_IN,   # scoped tree
    # a node of the tree (htmx): the seeded objective is the employee's individual one, hidden from others
    "performance.tree_node GET":                    OWNER_MGR_HR_ADMIN,
    "performance.new_objective GET":                SIGNED_IN,
    "performance.create_objective POST":            SIGNED_IN,   # anyone with an employee record
    "performance.objective GET":                    OWNER_MGR_HR_ADMIN,
    "performance.key_result GET":                   OWNER_MGR_HR_ADMIN,
    # edit: owner, manager, perf.manage (HR); admin only views (perf.view_all)
    "performance.edit_objective GET":               OWNER_MGR_HR,
    "performance.update_objective POST":            OWNER_MGR_HR,
    "performance.delete_objective POST":            OWNER_MGR_HR,
    "performance.create_kr POST":                   OWNER_MGR_HR,
    "performance.edit_kr GET":                      OWNER_MGR_HR,
    "performance.update_kr POST":                   OWNER_MGR_HR,
    "performance.delete_kr POST":                   OWNER_MGR_HR,
    # check-ins on an individual KR: its owner only
    "performance.create_checkin POST":              OWNER_ONLY,
    # approval of an individual objective: the manager or HR, never the owner (already active: 409)
    "performance.approve_objective POST":           "hidden  ok  hidden  ok  hidden | login login",
    "performance.team GET":                         TEAM_HR_ADMIN,
    "performance.warnings GET":                     TEAM_HR_ADMIN,
    "performance.team_export POST":                 "403  ok  403  ok  403 | login login",  # perf.export
    # ------------------------------------------------------------ performance reviews
    "performance.reviews GET":                      SIGNED_IN,   # own / team / all by permission
    "performance.review GET":                       OWNER_MGR_HR_ADMIN,
    "performance.submit_self POST":                 OWNER_ONLY,
    "performance.sign_result POST":                 OWNER_ONLY,
    "performance.create_appeal POST":               OWNER_ONLY,
    # the manager scores (HR may too: perf.manage); never the employee
    "performance.submit_score POST":                "hidden  ok  hidden  ok  hidden | login login",
    "performance.respond_appeal POST":              "hidden  ok  hidden  ok  hidden | login login",
    "performance.approve_review POST":              HR_ONLY,     # perf.manage
    "performance.approve_unsigned POST":            HR_ONLY,
    "performance.calibrate POST":                   HR_ONLY,
    "performance.cycles GET":                       HR_ONLY,
    "performance.create_cycle POST":                HR_ONLY,
    "performance.cycle_settings GET":               HR_ONLY,
    "performance.update_cycle POST":                HR_ONLY,
    "performance.cycle_state POST":                 HR_ONLY,
    "performance.templates GET":                    HR_ONLY,
    "performance.create_template POST":             HR_ONLY,
    "performance.create_reviews POST":              HR_ONLY,
    "performance.ratings GET":                      HR_ONLY,
    "performance.save_ratings POST":                HR_ONLY,
    # ------------------------------------------------------------ training: learner side (own enrollment)
    "training.my_learning GET":                     SIGNED_IN,
    "training.course_view GET":                     OWNER_ONLY,
    "training.lesson GET":                          OWNER_ONLY,
    "training.lesson_done POST":                    OWNER_ONLY,
    "training.lesson_ping POST":                    OWNER_ONLY,
    "training.learner_file GET":                    OWNER_ONLY,
    "training.exam_start POST":                     OWNER_ONLY,
    "training.attempt GET":                         OWNER_ONLY,
    "training.attempt_result GET":                  OWNER_ONLY,
    "training.answer_save POST":                    OWNER_ONLY,  # attempt submitted already: 409
    "training.attempt_submit POST":                 OWNER_ONLY,
    "training.ack_form GET":                        OWNER_ONLY,
    "training.ack_sign POST":                       OWNER_ONLY,
    # signed acknowledgement: the signer and compliance (HR, admin, legal); not the manager or trainer
    "training.ack_evidence GET":                    OWNER_HR_ADMIN,
    # a person's training history: self, manager, training.view_all (trainer, HR, admin)
    "training.person_history GET":                  SIGNED_IN,
    # ------------------------------------------------------------ training: studio, reports
    "training.studio GET":                          ASSIGNERS,
    "training.assignments GET":                     ASSIGNERS,
    "training.assignment_create POST":              ASSIGNERS,
    "training.assignment_revoke POST":              ASSIGNERS,
    "training.new_course GET":                      AUTHORS,
    "training.course_create POST":                  AUTHORS,
    "training.course_edit GET":                     AUTHORS,
    "training.settings_save POST":                  AUTHORS,     # published version: 409
    "training.rules_save POST":                     AUTHORS,
    "training.publish POST":                        AUTHORS,
    "training.version_create POST":                 AUTHORS,
    "training.new_lesson GET":                      AUTHORS,
    "training.lesson_create POST":                  AUTHORS,
    "training.lesson_edit GET":                     AUTHORS,
    "training.lesson_save POST":                    AUTHORS,
    "training.lesson_delete POST":                  AUTHORS,
    "training.lesson_move POST":                    AUTHORS,
    "training.file_upload POST":                    AUTHORS,
    "training.file_delete POST":                    AUTHORS,
    "training.studio_file GET":                     AUTHORS,
    "training.questions GET":                       AUTHORS,
    "training.new_question GET":                    AUTHORS,
    "training.question_create POST":                AUTHORS,
    "training.question_edit GET":                   AUTHORS,
    "training.question_save POST":                  AUTHORS,
    "training.question_toggle POST":                AUTHORS,
    "training.bank_upload GET":                     AUTHORS,
    "training.questions_import POST":               AUTHORS,
    "training.bank_template GET":                   AUTHORS,
    "training.reports_index GET":                   REPORTERS,   # manager: own team's rows only
    "training.reports_xlsx GET":                    REPORTERS,
    "training.course_report GET":                   REPORTERS,
    "training.course_report_xlsx GET":              REPORTERS,
    "training.compliance GET":                      HR_ADMIN,    # training.compliance
    "training.compliance_xlsx GET":                 HR_ADMIN,
    # ------------------------------------------------------------ clients (company data owned by staff)
    "clients.index GET":                            SIGNED_IN,   # scoped list
    "clients.show GET":                             OWNER_MGR_HR_ADMIN,  # clients.view_all: HR, admin
    "clients.new GET":                              SELLERS,
    "clients.create POST":                          SELLERS,
    "clients.edit GET":                             SELLERS,     # owner or the owner's manager
    "clients.update POST":                          SELLERS,
    "clients.contact_add POST":                     SELLERS,
    "clients.interaction_add POST":                 SELLERS,
    "clients.receivable_add POST":                  SELLERS,
    "clients.order_create POST":                    SELLERS,
    "clients.export GET":                           SELLERS,     # scoped; HR/admin see but do not export
    # ------------------------------------------------------------ offboarding
    "offboarding.index GET":                        SIGNED_IN,
    "offboarding.queue GET":                        SIGNED_IN,   # my checklist items and sign-offs
    "offboarding.resignation GET":                  RESIGNERS,
    "offboarding.resignation_submit POST":          RESIGNERS,
    "offboarding.termination GET":                  CASE_MANAGE,
    "offboarding.termination_create POST":          CASE_MANAGE,
    "offboarding.templates GET":                    CASE_MANAGE,
    "offboarding.template_new GET":                 CASE_MANAGE,
    "offboarding.template_create POST":             CASE_MANAGE,
    "offboarding.template_edit GET":                CASE_MANAGE,
    "offboarding.template_update POST":             CASE_MANAGE,
    "offboarding.template_item_create POST":        CASE_MANAGE,
    "offboarding.template_item_delete POST":        CASE_MANAGE,
    "offboarding.show GET":                         CASE_VIEW,
    "offboarding.item_file GET":                    CASE_VIEW,   # the leaver's uploaded document
    # transfer the leaver's clients: the leaver, the head, HR (admin only views: 403)
    "offboarding.clients_transfer POST":            "hidden  ok  hidden  ok  403 | login login",
    # the case is still in handover: sign-off steps and signatures answer 409 to everyone involved
    # (state first); who may decide once it is their turn: tests/offboarding/test_rules.py
    "offboarding.step_approve POST":                CASE_VIEW,
    "offboarding.step_reject POST":                 CASE_VIEW,
    "offboarding.handover_sign POST":               CASE_VIEW,
    # the seeded item is the leaver's own (responsible: leaver): nobody else fills or confirms it
    "offboarding.item_submit POST":                 "hidden  403  hidden  403  403 | login login",
    "offboarding.item_confirm POST":                "hidden  403  hidden  403  403 | login login",
    "offboarding.item_waive POST":                  CASE_MANAGE,
    "offboarding.leaver_signature_waive POST":      CASE_MANAGE,
    "offboarding.handover_start POST":              CASE_MANAGE,
    "offboarding.dates_update POST":                CASE_MANAGE,
    "offboarding.complete POST":                    CASE_MANAGE,  # incomplete: 409
    "offboarding.revocation_retry POST":            CASE_MANAGE,
    "offboarding.evidence_page GET":                CASE_EVIDENCE,
    "offboarding.evidence_archive POST":            CASE_EVIDENCE,
    # temporary unfreeze: requested by someone involved; approved by the head AND HR, never admin
    "offboarding.unfreeze_create POST":             CASE_VIEW,
    "offboarding.unfreeze_approve POST":            "hidden  ok  hidden  ok  403 | login login",
    "offboarding.unfreeze_reject POST":             "hidden  ok  hidden  ok  403 | login login",
}


def parse(row: str) -> list[str]:
    cells = row.replace("|", " ").split()
    unknown = set(cells) - OUTCOMES
    if unknown:
        raise ValueError(f"unknown outcome(s) {unknown} in {row!r}")
    return cells
