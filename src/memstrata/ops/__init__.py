"""Operations on stores: backups, pruning plans, migrations, monitoring and tuning.

Every maintenance action is a plan first and an apply second; destructive
applies take a backup and record an undo point first.
"""

from memstrata.ops._backup import create_backup
from memstrata.ops._migrate import (
    Migration,
    MigrationError,
    MigrationRegistry,
    default_registry,
    detect_version,
    migrate_store,
)
from memstrata.ops._monitor import (
    SEVERITIES,
    AlertConfig,
    collect_metrics,
    evaluate_alerts,
    health_checks,
    metric_history,
)
from memstrata.ops._prune import (
    PruneConfig,
    PruneRecord,
    apply_plan,
    list_plans,
    load_plan,
    plan_prune,
    records_from_store,
    save_plan,
    undo_plan,
)
from memstrata.ops._repo import BackupError, Repository, list_backups
from memstrata.ops._report import PLOT_COLORS, html_report, prometheus_text
from memstrata.ops._restore import restore_backup, select_snapshot, verify_backups
from memstrata.ops._rotate import rotate_backups
from memstrata.ops._tune import TuneConfig, Tuner, plan_tuning

__all__ = [
    "PLOT_COLORS",
    "SEVERITIES",
    "AlertConfig",
    "BackupError",
    "Migration",
    "MigrationError",
    "MigrationRegistry",
    "PruneConfig",
    "PruneRecord",
    "Repository",
    "TuneConfig",
    "Tuner",
    "apply_plan",
    "collect_metrics",
    "create_backup",
    "default_registry",
    "detect_version",
    "evaluate_alerts",
    "health_checks",
    "html_report",
    "list_backups",
    "list_plans",
    "load_plan",
    "metric_history",
    "migrate_store",
    "plan_prune",
    "plan_tuning",
    "prometheus_text",
    "records_from_store",
    "restore_backup",
    "rotate_backups",
    "save_plan",
    "select_snapshot",
    "undo_plan",
    "verify_backups",
]
