#!/usr/bin/env bash
# Lints infra/template.yaml: cfn-lint, `sam validate --lint`, transform_check.py (the template
# expanded with OIDC off and on) and checkov. Every finding is either
# fixed or suppressed in the template with its reason; any new one fails this script.
set -euo pipefail
cd "$(dirname "$0")"
source ./tools.sh
cfn-lint template.yaml
sam validate --lint --template template.yaml --region us-east-1
python transform_check.py
checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download
echo "infra/check.sh: cfn-lint, sam validate --lint, transform_check.py and checkov passed"
