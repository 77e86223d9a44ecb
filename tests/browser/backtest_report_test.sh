#!/usr/bin/env bash
# The backtest's HTML report as an analyst opens it: a simulation with
# inspection outcomes, a backtest of a candidate against the default profile,
# and the report opened in headless Chromium (report_in_browser.py), which
# checks that it renders without errors, with its plots, and saves a
# screenshot (kept in the build tree for a person to look at).
set -euo pipefail
boxwatch=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
"$boxwatch" simulate --out "$out/traffic.jsonl" --labels "$out/labels.jsonl" --containers 1500 --seed 5 \
  --outcome-rate 0.5 >/dev/null 2>"$out/simulate.log"
sed -e 's/^version: .*/version: "browser-test"/' -e 's/payment.cash: {weight: 15,/payment.cash: {weight: 35,/' \
  "$here/../../profiles/default.yaml" >"$out/candidate.yaml"
grep -q 'payment.cash: {weight: 35,' "$out/candidate.yaml" || { echo "the candidate edit did not apply" >&2; exit 1; }
"$boxwatch" backtest --input "$out/traffic.jsonl" --labels "$out/labels.jsonl" --profile "$out/candidate.yaml" \
  --baseline default --html "$out/report.html" --json "$out/report.json" >"$out/backtest.txt"
/usr/bin/python3 "$here/report_in_browser.py" "$out/report.html" "$out/report.png" --min-plots 7
