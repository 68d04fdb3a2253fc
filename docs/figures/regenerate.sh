#!/usr/bin/env bash
# Regenerate the figures the README links, from the committed study records only
# (results/studies/*/runs/*.json): `make figures`. Each study gets its leaderboard's summary
# figures (dbench leaderboard --plots); the Locatello et al. 2019 slice also gets the study
# analyses' figures (dbench study). Per-run figures need model files, which are not committed.
set -euo pipefail
cd "$(dirname "$0")/../.."
DBENCH=${DBENCH:-.venv/bin/dbench}
out=docs/figures
for study in table1 budget dcign_plateau weak locatello2019_dsprites; do
  [ -d "results/studies/$study/runs" ] || continue
  rm -rf "$out/$study" && mkdir -p "$out/$study"
  "$DBENCH" leaderboard --results-dir "results/studies/$study" --plots "$out/$study" >/dev/null
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$DBENCH" study --results-dir results/studies/locatello2019_dsprites -o "$tmp" >/dev/null
for png in "$tmp"/*/*.png; do cp "$png" "$out/locatello2019_dsprites/study_$(basename "$png")"; done
ls -R "$out"
