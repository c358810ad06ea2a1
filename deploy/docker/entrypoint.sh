#!/usr/bin/env bash
# Entrypoint of the API image: `api` (gunicorn), `worker` (Celery), `beat` (Celery beat),
# `migrate`, `manage <args>`, or any other command verbatim.
#
# Each role wipes its own PROMETHEUS_MULTIPROC_DIR at start: files left by a previous run
# would be counted twice. The directory is per role (compose sets it below a shared volume),
# because the pids of different containers collide.
set -euo pipefail

role="${1:-api}"
shift || true

reset_metrics_dir() {
    if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
        mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
        find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete
    fi
}

wait_for_db() {
    # The database healthcheck gates startup in compose; this covers manual `docker run`s.
    for _ in $(seq 1 60); do
        python manage.py shell -c "from django.db import connection; connection.ensure_connection()" \
            >/dev/null 2>&1 && return 0
        sleep 2
    done
    echo "entrypoint: the database did not answer within 120 s" >&2
    return 1
}

case "$role" in
    api)
        reset_metrics_dir
        wait_for_db
        if [ "${MEDFORGE_MIGRATE_ON_START:-1}" = "1" ]; then
            python manage.py migrate --noinput
        fi
        # gunicorn runs no Django system checks: refuse to serve with overlapping data roots.
        python manage.py check --fail-level ERROR
        exec gunicorn medforge.wsgi:application -c /app/deploy/docker/gunicorn.conf.py "$@"
        ;;
    worker)
        reset_metrics_dir
        wait_for_db
        python manage.py check --fail-level ERROR
        exec celery -A medforge worker --loglevel "${LOG_LEVEL:-INFO}" \
            --queues "${CELERY_WORKER_QUEUES:-default,scoring}" \
            --concurrency "${CELERY_WORKER_CONCURRENCY:-4}" \
            --max-tasks-per-child "${CELERY_MAX_TASKS_PER_CHILD:-200}" "$@"
        ;;
    beat)
        reset_metrics_dir
        wait_for_db
        exec celery -A medforge beat --loglevel "${LOG_LEVEL:-INFO}" \
            --schedule /var/lib/medforge/celerybeat-schedule "$@"
        ;;
    migrate)
        wait_for_db
        exec python manage.py migrate --noinput
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
