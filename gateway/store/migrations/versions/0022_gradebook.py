"""The OneRoster 1.2 gradebook (issue 18): categories, score scales, assessment line items and
results beside the existing line items and results, which gain the model's remaining fields
(category, sessions, score scale, learning objectives, text score, the result flags, metadata).
See :mod:`gateway.store.gradebook`.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 13:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

_FLAGS = ('in_progress', 'incomplete', 'late', 'missing')


def _record_columns() -> list[sa.Column]:
    return [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('district_id', sa.Integer(), nullable=False),
        sa.Column('sourced_id', sa.String(length=255), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('date_last_modified', sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        'gradebook_categories', *_record_columns(),
        sa.Column('title', sa.String(length=255), nullable=False),
        sa.Column('weight', sa.Float(), nullable=True),
        sa.Column('class_sourced_id', sa.String(length=255), nullable=True),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('district_id', 'sourced_id',
                            name='uq_gradebook_categories_district_sourced_id'),
    )
    op.create_index('ix_gradebook_categories_class', 'gradebook_categories',
                    ['district_id', 'class_sourced_id'], unique=False)
    op.create_table(
        'score_scales', *_record_columns(),
        sa.Column('title', sa.String(length=255), nullable=False),
        sa.Column('type', sa.String(length=255), nullable=False),
        sa.Column('course_sourced_id', sa.String(length=255), nullable=True),
        sa.Column('class_sourced_id', sa.String(length=255), nullable=False),
        sa.Column('score_scale_value', sa.JSON(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('district_id', 'sourced_id', name='uq_score_scales_district_sourced_id'),
    )
    op.create_index('ix_score_scales_class', 'score_scales', ['district_id', 'class_sourced_id'],
                    unique=False)
    op.create_table(
        'assessment_line_items', *_record_columns(),
        sa.Column('title', sa.String(length=255), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('class_sourced_id', sa.String(length=255), nullable=True),
        sa.Column('parent_sourced_id', sa.String(length=255), nullable=True),
        sa.Column('score_scale_sourced_id', sa.String(length=255), nullable=True),
        sa.Column('result_value_min', sa.Float(), nullable=True),
        sa.Column('result_value_max', sa.Float(), nullable=True),
        sa.Column('learning_objective_set', sa.JSON(), nullable=True),
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('district_id', 'sourced_id',
                            name='uq_assessment_line_items_district_sourced_id'),
    )
    op.create_index('ix_assessment_line_items_class', 'assessment_line_items',
                    ['district_id', 'class_sourced_id'], unique=False)
    op.create_table(
        'assessment_results', *_record_columns(),
        sa.Column('assessment_line_item_sourced_id', sa.String(length=255), nullable=False),
        sa.Column('student_sourced_id', sa.String(length=255), nullable=False),
        sa.Column('score_status', sa.String(length=32), nullable=False),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('text_score', sa.Text(), nullable=True),
        sa.Column('score_date', sa.Date(), nullable=False),
        sa.Column('score_scale_sourced_id', sa.String(length=255), nullable=True),
        sa.Column('score_percentile', sa.Float(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('learning_objective_set', sa.JSON(), nullable=True),
        *[sa.Column(flag, sa.String(length=5), nullable=True) for flag in _FLAGS],
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('district_id', 'sourced_id',
                            name='uq_assessment_results_district_sourced_id'),
    )
    op.create_index('ix_assessment_results_student', 'assessment_results',
                    ['district_id', 'student_sourced_id'], unique=False)
    op.create_index('ix_assessment_results_line_item', 'assessment_results',
                    ['district_id', 'assessment_line_item_sourced_id'], unique=False)
    with op.batch_alter_table('line_items') as batch:
        for name in ('category_sourced_id', 'grading_period_sourced_id',
                     'academic_session_sourced_id', 'score_scale_sourced_id'):
            batch.add_column(sa.Column(name, sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('learning_objective_set', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('metadata', sa.JSON(), nullable=True))
        batch.create_index('ix_line_items_category', ['district_id', 'category_sourced_id'],
                           unique=False)
    with op.batch_alter_table('results') as batch:
        batch.add_column(sa.Column('score_scale_sourced_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('text_score', sa.Text(), nullable=True))
        batch.add_column(sa.Column('learning_objective_set', sa.JSON(), nullable=True))
        for flag in _FLAGS:
            batch.add_column(sa.Column(flag, sa.String(length=5), nullable=True))
        batch.add_column(sa.Column('metadata', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('results') as batch:
        for name in ('metadata', *reversed(_FLAGS), 'learning_objective_set', 'text_score',
                     'score_scale_sourced_id'):
            batch.drop_column(name)
    with op.batch_alter_table('line_items') as batch:
        batch.drop_index('ix_line_items_category')
        for name in ('metadata', 'learning_objective_set', 'score_scale_sourced_id',
                     'academic_session_sourced_id', 'grading_period_sourced_id',
                     'category_sourced_id'):
            batch.drop_column(name)
    op.drop_index('ix_assessment_results_line_item', table_name='assessment_results')
    op.drop_index('ix_assessment_results_student', table_name='assessment_results')
    op.drop_table('assessment_results')
    op.drop_index('ix_assessment_line_items_class', table_name='assessment_line_items')
    op.drop_table('assessment_line_items')
    op.drop_index('ix_score_scales_class', table_name='score_scales')
    op.drop_table('score_scales')
    op.drop_index('ix_gradebook_categories_class', table_name='gradebook_categories')
    op.drop_table('gradebook_categories')
