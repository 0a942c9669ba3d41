#!/usr/bin/env bash
# Allure Report 3 (the npm package `allure`, run with the machine's Node.js) from a run's allure-results.
# Usage: scripts/allure-report.sh [REPORTS_DIR]   (default: reports/latest)
set -euo pipefail
dir=${1:-reports/latest}
[ -d "$dir/allure-results" ] || { echo "allure-report: $dir/allure-results: not found (run the matrix first)" >&2; exit 1; }
if ! command -v npx >/dev/null 2>&1; then
  echo "allure-report: Node.js (npx) is not installed: apt-get install nodejs npm, then run this again;" \
       "meanwhile $dir/matrix.html has the matrix" >&2
  exit 1
fi
NO_COLOR=1 npx --yes allure@3.18.0 generate "$dir/allure-results" -o "$dir/allure-report" >/dev/null
echo "allure-report: $dir/allure-report/index.html"
