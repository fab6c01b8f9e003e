#!/usr/bin/env bash
# Builds every Lambda function for provided.al2023 on arm64 with cargo-lambda, then `sam build`
# (which packages the same binaries into .aws-sam/). `--no-sam` stops after cargo-lambda.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/tools.sh
functions=(create-job progress-ingest job-id-api status-api ws-connect ws-disconnect ws-message progress-push reconcile upload-api ws-authorizer)
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done
cargo lambda build --release --arm64 "${packages[@]}"
for f in "${functions[@]}"; do
  test -x "target/lambda/$f/bootstrap" || { echo "missing target/lambda/$f/bootstrap" >&2; exit 1; }
  # ELF with e_machine 0xB7 (AArch64)
  python3 -c 'import sys; h = open(sys.argv[1], "rb").read(20); sys.exit(h[:4] != b"\x7fELF" or h[18:20] != b"\xb7\x00")' \
    "target/lambda/$f/bootstrap" || { echo "$f is not an arm64 ELF binary" >&2; exit 1; }
done
echo "infra/build.sh: ${#functions[@]} arm64 bootstraps in target/lambda/"
if [ "${1:-}" != "--no-sam" ]; then
  (cd infra && sam build --template template.yaml --beta-features)
fi
