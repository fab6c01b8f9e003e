# Sourced by check.sh and build.sh: puts cfn-lint, the SAM CLI, checkov, cargo-lambda and zig on
# PATH, installing them from PyPI into ./.venv-infra when they are missing.
infra_tools() {
  local root venv
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv-infra"
  if [ ! -x "$venv/bin/sam" ] || [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/cargo-lambda" ] || [ ! -x "$venv/bin/cfn-lint" ] || ! "$venv/bin/python" -c "import websockets" 2>/dev/null; then
    echo "infra: installing cfn-lint, aws-sam-cli, checkov, cargo-lambda, ziglang and websockets into .venv-infra" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet cfn-lint aws-sam-cli checkov cargo-lambda ziglang websockets
  fi
  export PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0
}
infra_tools
