#!/usr/bin/env bash
# Builds every Lambda function for provided.al2023 on arm64 as it is deployed: `sam build` runs
# `cargo lambda build --release --arm64` once per function (so each binary links only what its
# own package enables, and gets cargo-lambda's release settings: strip, thin LTO, one codegen
# unit, panic = abort) and packages it into infra/.aws-sam/build/. Then checks that each bootstrap
# is an arm64 ELF binary and prints its size and its zipped size.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/tools.sh
(cd infra && sam build --template template.yaml --beta-features)
python3 - infra/.aws-sam/build 12 <<'PY'
import io, pathlib, sys, zipfile
root, expected = pathlib.Path(sys.argv[1]), int(sys.argv[2])
bootstraps = sorted(root.glob("*/bootstrap"))
if len(bootstraps) != expected:
    sys.exit(f"infra/build.sh: {len(bootstraps)} bootstraps in {root}, expected {expected}")
for path in bootstraps:
    data = path.read_bytes()
    # ELF with e_machine 0xB7 (AArch64)
    if data[:4] != b"\x7fELF" or data[18:20] != b"\xb7\x00":
        sys.exit(f"infra/build.sh: {path} is not an arm64 ELF binary")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("bootstrap", data)
    print(f"{path.parent.name:28} {len(data) / 1e6:6.2f} MB, zip {len(archive.getvalue()) / 1e6:5.2f} MB")
print(f"infra/build.sh: {len(bootstraps)} arm64 bootstraps in {root}")
PY
