#!/usr/bin/env bash
# Redraws the studies' figures from the results database alone.
#
#   scripts/figures.sh [-d DB] [-o OUTDIR] [-p PROFILE] [study ...]
#
# For each study (default: all five) whose latest FINISHED study run of the profile exists, its
# studies/<study>/figure.sql exports the data of that run (tab-separated) to OUTDIR/data/, and
# studies/<study>/figure.gp draws OUTDIR/figures/<study>.png from that file. The caption names the
# study run. Nothing else feeds the figures.
set -euo pipefail
db=results/results.sqlite out=results profile=paper
while getopts "d:o:p:" opt; do
  case $opt in
    d) db=$OPTARG ;; o) out=$OPTARG ;; p) profile=$OPTARG ;;
    *) echo "usage: $0 [-d DB] [-o OUTDIR] [-p PROFILE] [study ...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
studies=("${@:-quality speed mask reparam inpaint}")
[ -f "$db" ] || { echo "no results database at $db: run a study first (make study-speed)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "gnuplot is missing: run make deps" >&2; exit 1; }
mkdir -p "$out/data" "$out/figures"
here=$(cd "$(dirname "$0")/.." && pwd)
drawn=0
for study in ${studies[*]}; do
  dir="$here/studies/$study"
  [ -f "$dir/figure.sql" ] || { echo "unknown study $study" >&2; exit 2; }
  run=$(sqlite3 "$db" "SELECT r.id FROM runs r JOIN experiments e ON e.id = r.experiment_id
        JOIN tags k ON k.run_id = r.id AND k.key = 'kind' AND k.value = 'study'
        WHERE e.name = 'study-$study' AND r.profile = '$profile' AND r.status = 'FINISHED'
        ORDER BY r.start_ms DESC LIMIT 1")
  if [ -z "$run" ]; then
    echo "study-$study: no finished $profile run in $db, skipped"
    continue
  fi
  info=$(sqlite3 -separator ' ' "$db" "SELECT substr(coalesce(git_commit, 'unknown'), 1, 10),
        (SELECT count(*) FROM tags t WHERE (t.key = 'study_run' AND t.value = '$run') OR t.key = 'reused_by:$run'),
        datetime(start_ms / 1000, 'unixepoch') FROM runs WHERE id = '$run'")
  read -r commit count started <<<"$info"
  suffix=$([ "$profile" = paper ] || echo "-$profile")
  data="$out/data/$study$suffix.tsv"
  sqlite3 -separator $'\t' -cmd ".parameter set @study_run '$run'" "$db" < "$dir/figure.sql" > "$data"
  png="$out/figures/$study$suffix.png"
  caption="Study run $run ($count measurement runs, profile $profile, commit $commit, $started UTC)"
  gnuplot -e "data='$data'; out='$png'; caption='$caption'; profile='$profile'" "$dir/figure.gp"
  echo "study-$study: $png from run $run"
  drawn=$((drawn + 1))
done
[ "$drawn" -gt 0 ] || echo "no figures drawn (no finished study runs of profile $profile)"
