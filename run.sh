#!/usr/bin/env bash
# PaddleVideo-style launcher; nothing to edit inside.
#   bash run.sh demo [--quick]               TSM vs TSN on synthetic data (--quick: bundled clips)
#   bash run.sh demo --detection             AVA-style detection: SlowFast vs one frame, synthetic actors
#   bash run.sh demo --online                online TSM streamed frame by frame vs the offline shift
#   bash run.sh demo --live                  live: per-person action events from a file and a network stream
#   bash run.sh test [--fast] [pytest args]  the test suite (--fast: the lane without processes, < 3 min)
#   bash run.sh train   NAME CONFIG [flags]  -> train.py   --model_name NAME --config CONFIG flags
#        [--nproc N [--ips IP1,IP2]]          data parallel via python -m paddle.distributed.launch
#   bash run.sh eval    NAME CONFIG [flags]  -> eval.py     (--nproc N [--ips ...]: sharded, merged on rank 0)
#   bash run.sh predict NAME CONFIG [flags]  -> predict.py  (--nproc N [--ips ...]: sharded; --resume finishes)
#   bash run.sh export  NAME CONFIG [flags]  -> export.py (static model for Paddle Inference)
#   bash run.sh live --config C --weights W --source 0|rtsp://...|FILE [--events OUT.jsonl] [flags]
#                                             -> predict.py --live (person tracks, per-person action events)
#   bash run.sh serve [--models FILE] [--host 127.0.0.1] [--port 8080] [flags]
#                                             -> serve.py (HTTP API, web page, streams, events, metrics)
# Set-up is automatic: the first run creates .venv (unless a virtualenv is active) and installs
# requirements.txt; it reinstalls only when requirements.txt changes.  On a CUDA machine set
# PADDLE_PACKAGE=paddlepaddle-gpu (see README).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,19p' "$ROOT/run.sh" | sed 's/^# \{0,1\}//'; }

setup() {
  local env_dir
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    env_dir="$VIRTUAL_ENV"; PY="$VIRTUAL_ENV/bin/python"
  else
    env_dir="${PV_VENV:-$ROOT/.venv}"
    if [ ! -x "$env_dir/bin/python" ]; then
      echo "[setup] creating virtual environment $env_dir" >&2
      python3 -m venv "$env_dir"
    fi
    PY="$env_dir/bin/python"
  fi
  local pkg="${PADDLE_PACKAGE:-paddlepaddle}"
  local want; want="$(cat "$ROOT/requirements.txt"; echo "$pkg")"
  want="$(printf '%s' "$want" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$env_dir/.paddlevideo-req" 2>/dev/null)" != "$want" ]; then
    echo "[setup] installing requirements.txt into $env_dir (once)" >&2
    # opencv-contrib-python-headless replaces these (both own the cv2 package)
    "$PY" -m pip uninstall -y -q opencv-python-headless opencv-python >/dev/null 2>&1 || true
    if [ "$pkg" = "paddlepaddle" ]; then
      "$PY" -m pip install -q -r "$ROOT/requirements.txt"
    else
      grep -v '^paddlepaddle' "$ROOT/requirements.txt" > "$env_dir/.req-no-paddle.txt"
      "$PY" -m pip install -q -r "$env_dir/.req-no-paddle.txt" "$pkg"
    fi
    echo "$want" > "$env_dir/.paddlevideo-req"
  fi
}

mode="${1:-}"
[ -n "$mode" ] || { usage; exit 2; }
shift
case "$mode" in
  train|eval|predict|export)
    if [ $# -lt 2 ]; then echo "error: usage: bash run.sh $mode NAME CONFIG [flags]" >&2; exit 2; fi
    name="$1"; config="$2"; shift 2
    setup
    if [ "$mode" != "export" ]; then
      nproc=""; ips=""; rest=()
      while [ $# -gt 0 ]; do
        case "$1" in
          --nproc) nproc="${2:?--nproc needs a number}"; shift 2 ;;
          --ips) ips="${2:?--ips needs IP1,IP2,...}"; shift 2 ;;
          *) rest+=("$1"); shift ;;
        esac
      done
      if [ -n "$nproc" ]; then
        logdir="${PV_LAUNCH_LOG_DIR:-log}"
        launch=("$PY" -m paddle.distributed.launch --nproc_per_node "$nproc" --log_dir "$logdir")
        [ -n "$ips" ] && launch+=(--ips "$ips")
        rc=0
        mkdir -p "$logdir"
        export PADDLEVIDEO_STATUS_FILE="$logdir/exit_status"   # rank 0's exit code (e.g. predict: videos failed)
        rm -f "$PADDLEVIDEO_STATUS_FILE"
        "${launch[@]}" "$ROOT/$mode.py" --model_name "$name" --config "$config" ${rest[@]+"${rest[@]}"} || rc=$?
        if [ "$rc" -ne 0 ]; then   # name the rank that died first (the launcher often names a survivor)
          (cd "$ROOT" && "$PY" -m paddlevideo.runtime.parallel diagnose "$logdir" "$mode") || true
        elif [ -s "$PADDLEVIDEO_STATUS_FILE" ]; then
          rc="$(cat "$PADDLEVIDEO_STATUS_FILE")"
        fi
        exit "$rc"
      fi
      set -- ${rest[@]+"${rest[@]}"}
    fi
    exec "$PY" "$ROOT/$mode.py" --model_name "$name" --config "$config" "$@"
    ;;
  test)
    setup
    cd "$ROOT"
    # the web page's browser test drives Debian's chromium through chromedriver (installed once, when missing)
    if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
      echo "[setup] installing chromium + chromium-driver (the web page's browser test)" >&2
      SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo -n"
      { $SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 ||
        { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; } ||
        echo "[setup] warning: chromium could not be installed; the browser test will say so" >&2
    fi
    # two workers, a test file each (module fixtures stay in one process); PV_TEST_WORKERS=0 runs serially
    workers=(-n "${PV_TEST_WORKERS:-2}" --dist loadfile)
    [ "${PV_TEST_WORKERS:-2}" = "0" ] && workers=()
    if [ "${1:-}" = "--fast" ]; then    # the fast lane: no test that starts processes or trains (< 3 min)
      shift
      exec "$PY" -m pytest -q ${workers[@]+"${workers[@]}"} -m "not slow" tests "$@"
    fi
    exec "$PY" -m pytest -q ${workers[@]+"${workers[@]}"} tests "$@"
    ;;
  demo)
    setup
    if [ "${1:-}" = "--online" ]; then
      shift
      exec "$PY" "$ROOT/scripts/demo_online.py" "$@"
    fi
    if [ "${1:-}" = "--live" ]; then
      shift
      exec "$PY" "$ROOT/scripts/demo_live.py" "$@"
    fi
    if [ "${1:-}" = "--detection" ]; then
      shift
      exec "$PY" "$ROOT/scripts/demo_detection.py" "$@"
    fi
    if [ "${1:-}" = "--quick" ]; then
      shift
      exec bash "$ROOT/scripts/quick_demo.sh" "$PY" "$@"
    fi
    exec "$PY" "$ROOT/scripts/demo.py" "$@"
    ;;
  live)
    setup
    exec "$PY" "$ROOT/predict.py" --live "$@"
    ;;
  serve)
    setup
    exec "$PY" "$ROOT/serve.py" "$@"
    ;;
  -h|--help|help) usage ;;
  *)
    echo "error: unknown mode '$mode'; use one of train, eval, predict, export, live, serve, demo, test" >&2
    exit 2
    ;;
esac
