"""performance

Revision ID: 0011_performance
Revises: 0010_attendance
Create Date: 2026-11-25 13:56:50.183163
"""
from alembic import op
import sqlalchemy as sa
import portal.core.db


revision = '0011_performance'
down_revision = '0010_attendance'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('perf_cycles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('checkin_day', sa.Integer(), nullable=False),
    sa.Column('checkin_frequency', sa.String(length=10), nullable=False),
    sa.Column('checkin_weekday', sa.Integer(), nullable=False),
    sa.Column('response_days', sa.Integer(), nullable=False),
    sa.Column('opened_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_cycles')),
    sa.UniqueConstraint('name', name=op.f('uq_perf_cycles_name'))
    )
    op.create_table('perf_rating_bands',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rating', sa.String(length=10), nullable=False),
    sa.Column('min_score', sa.Numeric(precision=7, scale=2), nullable=False),
    sa.Column('coefficient', sa.Numeric(precision=6, scale=3), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_rating_bands')),
    sa.UniqueConstraint('rating', name=op.f('uq_perf_rating_bands_rating'))
    )
    op.create_table('perf_review_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('formula', sa.String(length=300), nullable=False),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_review_templates')),
    sa.UniqueConstraint('name', name=op.f('uq_perf_review_templates_name'))
    )
    op.create_table('perf_review_criteria',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('weight', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['template_id'], ['perf_review_templates.id'], name=op.f('fk_perf_review_criteria_template_id_perf_review_templates'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_review_criteria')),
    sa.UniqueConstraint('template_id', 'code', name=op.f('uq_perf_review_criteria_template_id_code'))
    )
    with op.batch_alter_table('perf_review_criteria', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_perf_review_criteria_template_id'), ['template_id'], unique=False)
    op.create_table('perf_monthly_completion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('completion', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('last_checkin_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_perf_monthly_completion_employee_id_employees'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_monthly_completion')),
    sa.UniqueConstraint('employee_id', 'month', name=op.f('uq_perf_monthly_completion_employee_id_month'))
    )
    with op.batch_alter_table('perf_monthly_completion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_perf_monthly_completion_month'), ['month'], unique=False)
    op.create_table('perf_warnings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('reasons', sa.String(length=60), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_perf_warnings_employee_id_employees'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_warnings')),
    sa.UniqueConstraint('employee_id', 'month', name=op.f('uq_perf_warnings_employee_id_month'))
    )
    with op.batch_alter_table('perf_warnings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_perf_warnings_month'), ['month'], unique=False)
    op.create_table('perf_objectives',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=12), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('link_weight', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_perf_objectives_approved_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_perf_objectives_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['cycle_id'], ['perf_cycles.id'], name=op.f('fk_perf_objectives_cycle_id_perf_cycles'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_perf_objectives_department_id_departments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['employees.id'], name=op.f('fk_perf_objectives_owner_id_employees'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_id'], ['perf_objectives.id'], name=op.f('fk_perf_objectives_parent_id_perf_objectives'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_objectives'))
    )
    with op.batch_alter_table('perf_objectives', schema=None) as batch_op:
        batch_op.create_index('ix_perf_objectives_cycle_level', ['cycle_id', 'level'], unique=False)
        batch_op.create_index(batch_op.f('ix_perf_objectives_department_id'), ['department_id'], unique=False)
        batch_op.create_index('ix_perf_objectives_owner_cycle', ['owner_id', 'cycle_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_perf_objectives_parent_id'), ['parent_id'], unique=False)
    op.create_table('perf_key_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('objective_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('start_value', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('target_value', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('current_value', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('weight', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_perf_key_results_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['objective_id'], ['perf_objectives.id'], name=op.f('fk_perf_key_results_objective_id_perf_objectives'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_key_results'))
    )
    with op.batch_alter_table('perf_key_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_perf_key_results_objective_id'), ['objective_id'], unique=False)
    op.create_table('perf_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('self_score', sa.Numeric(precision=7, scale=2), nullable=True),
    sa.Column('self_comment', sa.Text(), nullable=False),
    sa.Column('manager_score', sa.Numeric(precision=7, scale=2), nullable=True),
    sa.Column('manager_comment', sa.Text(), nullable=False),
    sa.Column('scored_by_id', sa.Integer(), nullable=True),
    sa.Column('okr_completion', sa.Numeric(precision=7, scale=2), nullable=True),
    sa.Column('computed_score', sa.Numeric(precision=7, scale=2), nullable=True),
    sa.Column('final_score', sa.Numeric(precision=7, scale=2), nullable=True),
    sa.Column('calibration_note', sa.Text(), nullable=False),
    sa.Column('rating', sa.String(length=10), nullable=False),
    sa.Column('coefficient', sa.Numeric(precision=6, scale=3), nullable=True),
    sa.Column('signature_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('approved_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('response_due_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unsigned_reason', sa.Text(), nullable=False),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_perf_reviews_approved_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['cycle_id'], ['perf_cycles.id'], name=op.f('fk_perf_reviews_cycle_id_perf_cycles'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_perf_reviews_employee_id_employees'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['scored_by_id'], ['users.id'], name=op.f('fk_perf_reviews_scored_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['signature_id'], ['signatures.id'], name=op.f('fk_perf_reviews_signature_id_signatures'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['template_id'], ['perf_review_templates.id'], name=op.f('fk_perf_reviews_template_id_perf_review_templates'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_reviews')),
    sa.UniqueConstraint('cycle_id', 'employee_id', name=op.f('uq_perf_reviews_cycle_id_employee_id'))
    )
    with op.batch_alter_table('perf_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_perf_reviews_employee_id'), ['employee_id'], unique=False)
        batch_op.create_index('ix_perf_reviews_status', ['status'], unique=False)
    op.create_table('perf_appeals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('responded_by_id', sa.Integer(), nullable=True),
    sa.Column('responded_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_perf_appeals_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['responded_by_id'], ['users.id'], name=op.f('fk_perf_appeals_responded_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['review_id'], ['perf_reviews.id'], name=op.f('fk_perf_appeals_review_id_perf_reviews'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_appeals'))
    )
    with op.batch_alter_table('perf_appeals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_perf_appeals_review_id'), ['review_id'], unique=False)
    op.create_table('perf_checkins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_result_id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('previous_value', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('value', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('progress', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('confidence', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('milestones_done', sa.Text(), nullable=False),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_perf_checkins_employee_id_employees'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['key_result_id'], ['perf_key_results.id'], name=op.f('fk_perf_checkins_key_result_id_perf_key_results'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_perf_checkins_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_checkins'))
    )
    with op.batch_alter_table('perf_checkins', schema=None) as batch_op:
        batch_op.create_index('ix_perf_checkins_employee_month', ['employee_id', 'month'], unique=False)
        batch_op.create_index('ix_perf_checkins_kr_created', ['key_result_id', 'created_at'], unique=False)
    op.create_table('perf_milestones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_result_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('done_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('done_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['done_by_id'], ['users.id'], name=op.f('fk_perf_milestones_done_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['key_result_id'], ['perf_key_results.id'], name=op.f('fk_perf_milestones_key_result_id_perf_key_results'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_milestones'))
    )
    with op.batch_alter_table('perf_milestones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_perf_milestones_key_result_id'), ['key_result_id'], unique=False)
    op.create_table('perf_review_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('signature_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_perf_review_revisions_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['review_id'], ['perf_reviews.id'], name=op.f('fk_perf_review_revisions_review_id_perf_reviews'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['signature_id'], ['signatures.id'], name=op.f('fk_perf_review_revisions_signature_id_signatures'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_review_revisions')),
    sa.UniqueConstraint('review_id', 'number', name=op.f('uq_perf_review_revisions_review_id_number'))
    )
    op.create_table('perf_review_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('criterion_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Numeric(precision=7, scale=2), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['criterion_id'], ['perf_review_criteria.id'], name=op.f('fk_perf_review_scores_criterion_id_perf_review_criteria'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['review_id'], ['perf_reviews.id'], name=op.f('fk_perf_review_scores_review_id_perf_reviews'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_perf_review_scores')),
    sa.UniqueConstraint('review_id', 'criterion_id', name=op.f('uq_perf_review_scores_review_id_criterion_id'))
    )


def downgrade() -> None:
    op.drop_table('perf_review_scores')
    op.drop_table('perf_review_revisions')
    with op.batch_alter_table('perf_milestones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_perf_milestones_key_result_id'))
    op.drop_table('perf_milestones')
    with op.batch_alter_table('perf_checkins', schema=None) as batch_op:
        batch_op.drop_index('ix_perf_checkins_kr_created')
        batch_op.drop_index('ix_perf_checkins_employee_month')
    op.drop_table('perf_checkins')
    with op.batch_alter_table('perf_appeals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_perf_appeals_review_id'))
    op.drop_table('perf_appeals')
    with op.batch_alter_table('perf_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_perf_reviews_status')
        batch_op.drop_index(batch_op.f('ix_perf_reviews_employee_id'))
    op.drop_table('perf_reviews')
    with op.batch_alter_table('perf_key_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_perf_key_results_objective_id'))
    op.drop_table('perf_key_results')
    with op.batch_alter_table('perf_objectives', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_perf_objectives_parent_id'))
        batch_op.drop_index('ix_perf_objectives_owner_cycle')
        batch_op.drop_index(batch_op.f('ix_perf_objectives_department_id'))
        batch_op.drop_index('ix_perf_objectives_cycle_level')
    op.drop_table('perf_objectives')
    with op.batch_alter_table('perf_warnings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_perf_warnings_month'))
    op.drop_table('perf_warnings')
    with op.batch_alter_table('perf_monthly_completion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_perf_monthly_completion_month'))
    op.drop_table('perf_monthly_completion')
    with op.batch_alter_table('perf_review_criteria', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_perf_review_criteria_template_id'))
    op.drop_table('perf_review_criteria')
    op.drop_table('perf_review_templates')
    op.drop_table('perf_rating_bands')
    op.drop_table('perf_cycles')
