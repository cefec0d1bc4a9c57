#!/usr/bin/env bash
# One prepared GPU check (see bench/gpu_check.py and docs/packing.md):
#   bench/gpu_check.sh [OUT_DIR] [gpu_check.py options, e.g. --budget 450]
# OUT_DIR defaults to $OUT, else results/gpu/<UTC time>. Where asymloss is not installed, installs
# this checkout editable without touching an installed CUDA torch (no network needed; --no-install
# skips it); then runs the CUDA tests, bench/pack.py in a short form and as many full-length
# paper-cifar10 runs as fit in the time left.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then OUTDIR="$1"; shift; else OUTDIR="${OUT:-results/gpu/$(date -u +%Y%m%dT%H%M%SZ)}"; fi
mkdir -p "$OUTDIR"
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || PY=python
NO_INSTALL=0
for a in "$@"; do [ "$a" = "--no-install" ] && NO_INSTALL=1; done
# Install only where asymloss is not installed at all (an existing install, from wherever, is left
# alone: src/ comes first on PYTHONPATH below, so this checkout is what runs either way).
if [ "$NO_INSTALL" = 0 ] && ! "$PY" -c "import asymloss" 2>/dev/null; then
  if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    # a CUDA torch is there: never let pip replace it (no dependencies, no build isolation: offline)
    "$PY" -m pip install --no-deps --no-build-isolation -q -e . >"$OUTDIR/install.log" 2>&1 \
      || echo "editable install failed (see install.log); running from src/ instead" | tee -a "$OUTDIR/install.log"
  else
    "$PY" -m pip install -q -e . >"$OUTDIR/install.log" 2>&1 \
      || echo "install failed (see install.log); running from src/ instead" | tee -a "$OUTDIR/install.log"
  fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PYEOF' || { echo "missing Python packages: see above"; exit 2; }
import importlib, sys
missing = [m for m in ("torch", "numpy", "scipy", "pandas", "rich", "typer", "yaml", "sklearn", "PIL", "pytest")
           if importlib.util.find_spec(m) is None]
if missing:
    print("missing:", ", ".join(missing)); sys.exit(1)
PYEOF
ARGS=()
for a in "$@"; do [ "$a" = "--no-install" ] || ARGS+=("$a"); done
exec "$PY" bench/gpu_check.py --out "$OUTDIR" "${ARGS[@]}"
