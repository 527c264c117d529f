#!/usr/bin/env bash
# Quick end-to-end demo on the clips bundled in tests/data (bash run.sh demo --quick): writes a
# 5-class list (one clip per class, each class named after its clip in labels.txt), trains the
# small TSM (ResNet-18, 8x112px) for a few epochs, evaluates it and predicts one clip.  It shows the commands working, not accuracy: five clips teach the model little.
# Usage: bash scripts/quick_demo.sh PYTHON [extra train.py flags]
set -euo pipefail
PY="$1"; shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/output/quick_demo"
LIST="$OUT/clips.list"
LABELS="$OUT/labels.txt"
mkdir -p "$OUT"
i=0
: > "$LIST"
: > "$LABELS"
for f in arm_wrestling.mp4 mmaction2_test.mp4 mmaction2_test.avi paddlevideo_example.avi eivideo_example.mp4; do
  echo "$ROOT/tests/data/$f $i" >> "$LIST"; i=$((i+1))
  echo "${f%.*} (${f##*.})" | tr '_' ' ' >> "$LABELS"
done
common=(--model_name TSM --config "$ROOT/configs/tsm_small.yaml" -o "MODEL.label_list=$LABELS"
        -o "TRAIN.filelist=$LIST" -o "VALID.filelist=$LIST" -o "TEST.filelist=$LIST")
echo "== train (small TSM, 4 epochs) =="
"$PY" "$ROOT/train.py" "${common[@]}" --epoch 4 --batch_size 2 --save_dir "$OUT/checkpoints" \
  --fix_random_seed True --valid_interval 4 --log_interval 1 "$@"
echo "== eval =="
"$PY" "$ROOT/eval.py" "${common[@]}" --weights "$OUT/checkpoints/TSM_final.pdparams" --save_dir "$OUT"
echo "== predict =="
"$PY" "$ROOT/predict.py" "${common[@]}" --weights "$OUT/checkpoints/TSM_final.pdparams" \
  --video_path "$ROOT/tests/data/arm_wrestling.mp4" --output "$OUT/predict.json"
echo "demo outputs are in $OUT"
