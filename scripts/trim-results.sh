#!/usr/bin/env bash
# Trims the results database before it is committed (docs/contributing.md). Keeps the studies'
# runs, the training runs of the models the studies trained ("prerequisite …"), and every run
# whose id (or a prefix of 12 or more hex digits) is cited in the README, docs/ or the claims
# tables; thins the per-step metrics of training runs to every 25th step (and each series' last).
# Usage: scripts/trim-results.sh [DB]   (default results/results.sqlite)
set -euo pipefail
cd "$(dirname "$0")/.."
db=${1:-results/results.sqlite}
[ -f "$db" ] || { echo "trim-results: $db does not exist" >&2; exit 1; }
cited=$(mktemp)
trap 'rm -f "$cited"' EXIT
grep -rhoE '\b[0-9a-f]{12,32}\b' README.md docs results/*.md 2>/dev/null | sort -u > "$cited" || true
before=$(du -k "$db" | cut -f1)
sqlite3 "$db" <<SQL
CREATE TEMP TABLE cited(prefix TEXT);
.import $cited cited
CREATE TEMP TABLE keep AS
  SELECT r.id FROM runs r JOIN experiments e ON e.id = r.experiment_id
  WHERE e.name LIKE 'study-%' OR r.name LIKE 'prerequisite %'
     OR EXISTS (SELECT 1 FROM cited c WHERE r.id LIKE c.prefix || '%');
DELETE FROM metrics WHERE run_id NOT IN (SELECT id FROM keep);
DELETE FROM params WHERE run_id NOT IN (SELECT id FROM keep);
DELETE FROM tags WHERE run_id NOT IN (SELECT id FROM keep);
DELETE FROM runs WHERE id NOT IN (SELECT id FROM keep);
CREATE TEMP TABLE last AS SELECT run_id, key, max(step) AS step FROM metrics GROUP BY run_id, key;
DELETE FROM metrics
  WHERE step % 25 != 0
    AND run_id IN (SELECT r.id FROM runs r JOIN experiments e ON e.id = r.experiment_id
                   WHERE e.name IN ('vqvae', 'evaluator', 'train-diffusion', 'train-ar'))
    AND step < (SELECT l.step FROM last l WHERE l.run_id = metrics.run_id AND l.key = metrics.key);
DELETE FROM experiments WHERE id NOT IN (SELECT experiment_id FROM runs);
VACUUM;
SQL
after=$(du -k "$db" | cut -f1)
echo "trim-results: $db $((before / 1024)) MB → $((after / 1024)) MB, $(sqlite3 "$db" 'select count(*) from runs') runs kept"
