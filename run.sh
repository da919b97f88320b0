#!/usr/bin/env bash
# ahup_jax: one entry point for set-up and every job.
#
#   ./run.sh              the main job on the embedded synthetic dataset (generate, train SAA, evaluate,
#                         fit SPA, evaluate with SPA, export, print the results table)
#   ./run.sh test [ARGS]  the test suite (ARGS go to pytest, e.g. -m slow or -k spa)
#   ./run.sh bench        the benchmarks; rewrites BENCHMARKS.md and benchmarks/results.json
#   ./run.sh ablation [--seeds N] [--steps N] [--quick]
#                         paper Table 1's rows × seeds on the embedded data → docs/results/ablation.{md,json}, figures
#   ./run.sh main ARGS    python -m ahup_jax.main ARGS (any config, mode, override)
#   ./run.sh python ARGS  a python inside the project's environment
#
# Set-up is idempotent: .venv is (re)built only when it is missing or a requirements file changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=${AHUP_VENV:-.venv}
PY=${PYTHON:-python3}

ensure_env() {  # ensure_env REQ_FILE...: (re)install each requirements file whose content changed.
  [[ -x "$VENV/bin/python" ]] || { echo "[run.sh] creating $VENV" >&2; "$PY" -m venv "$VENV"; }
  local f want stamp installed=0
  for f in "$@"; do
    stamp="$VENV/.installed-$f.sha256"
    want=$(sha256sum "$f" | cut -d' ' -f1)
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && continue
    echo "[run.sh] installing $f into $VENV (one-off, about a minute)" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install --quiet -r "$f"
    echo "$want" > "$stamp"
    installed=1
  done
  if (( installed )); then  # the oneDNN convolutions (ahup_jax/native); without a C++ compiler XLA's are used
    echo "[run.sh] building ahup_jax/native (oneDNN convolutions, max pool; about 20 s)" >&2
    "$VENV/bin/python" -m ahup_jax.native.onednn >/dev/null \
      || echo "[run.sh] oneDNN convolutions not built (see above): XLA's are used, slower on CPU" >&2
  fi
}

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# glibc's malloc on transparent huge pages: XLA maps a fresh temporary buffer every train step, and faulting its
# pages in again cost 5-6 % of the embedded job's training. The jobs' entry points also preload mimalloc, which keeps
# the buffer mapped (ahup_jax/allocator.py; GLIBC_TUNABLES's own setting wins, AHUP_MALLOC=glibc opts out)
[[ "${GLIBC_TUNABLES:-}" == *glibc.malloc.hugetlb=* ]] \
  || export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1"

cmd=${1:-job}
[[ $# -gt 0 ]] && shift
case "$cmd" in
  job)
    ensure_env requirements.txt
    exec "$VENV/bin/python" -m ahup_jax.main --config=configs/saa.py:synth \
      --workdir="${AHUP_WORKDIR:-runs/synth}" --mode=all "$@"
    ;;
  test)
    ensure_env requirements.txt requirements-torch.txt
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  bench)
    ensure_env requirements.txt
    exec "$VENV/bin/python" -m benchmarks.run_all "$@"
    ;;
  ablation)
    ensure_env requirements.txt
    exec "$VENV/bin/python" -m ahup_jax.ablation "$@"
    ;;
  main)
    ensure_env requirements.txt
    exec "$VENV/bin/python" -m ahup_jax.main "$@"
    ;;
  python)
    ensure_env requirements.txt
    exec "$VENV/bin/python" "$@"
    ;;
  -h|--help|help)
    sed -n '2,14p' "$0"
    ;;
  *)
    echo "run.sh: unknown command '$cmd' (try ./run.sh help)" >&2
    exit 2
    ;;
esac
