#!/usr/bin/env bash
# Deployment manifest tests (docs/deploy.md, "Validating the manifests"):
# renders and validates every overlay of deploy/k8s/, then cross-checks the
# rendered dev and prod overlays: references, selectors and the metric names
# of the PrometheusRule against the metric families the code exports.
#
#   tests/deploy/run_deploy_tests.sh METRICS_LIST_FILE
#
# Tools are cached in $BOXWATCH_TOOLS_DIR (default build/tools).
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 METRICS_LIST_FILE   (one metric family name per line)" >&2
  exit 2
fi
metrics=$(realpath "$1")
cd "$(dirname "$0")/../.."
tools="${BOXWATCH_TOOLS_DIR:-$PWD/build/tools}"
export BOXWATCH_TOOLS_DIR="$tools"

scripts/k8s-validate
scripts/k8s-xref --metrics "$metrics" "$tools/rendered/dev.yaml" "$tools/rendered/prod.yaml"
echo "run_deploy_tests: OK"
