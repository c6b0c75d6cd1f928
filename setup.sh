#!/usr/bin/env bash
# setup.sh — install fakequant's dependencies and build the extension in place (idempotent).
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --disable-pip-version-check -r requirements.txt
# No build isolation: the extension must compile against the torch installed above.
python -m pip install --quiet --disable-pip-version-check --no-build-isolation -e .
python -c "import fakequant; print('fakequant ready:', fakequant.backend_info())"
