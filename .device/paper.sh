#!/usr/bin/env bash
# The paper profile on a lent GPU machine (docs/running.md, "The paper profile on a lent
# GPU"). Run it from the repository root once every part of the packed CIFAR-10 is in
# $VINET_DATA_DIR/cifar10-packed/. Each result goes into $OUT as soon as it exists, so a
# run stopped at its time limit still brings back what finished: the base's weights
# first, then stages 02-04, 06 and 05, the run folder's results tarred after each.
# Arguments (--set NAME=VALUE ...) go to every pipeline call; a dry run on a CPU uses
# them to shrink the work.
set -u -o pipefail
export PYTHONUNBUFFERED=1 VINET_PLAIN_PROGRESS=1
export VINET_DATA_DIR=${VINET_DATA_DIR:-data}
: "${OUT:?set OUT to the folder whose files come back}"
py=${PYTHON:-python3}
work=${DEVICE_RESULTS:-/tmp/device-results}
run=$work/paper/cifar10-resnet18
log=$OUT/device.log
extra=("$@")

note() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$log"; }
stages() {
  note "stages $*"
  "$py" -m vinet_utils.workflow.pipeline --profile paper --engine inline --results-dir "$work" \
    --stages "$@" "${extra[@]}" 2>&1 | tee -a "$log"
}
results() {  # the run folder's own files (no caches, no weights) in one archive
  (cd "$run" && find . -maxdepth 1 -type f ! -name '*.pt' ! -name '*.ckpt' -printf '%P\n' \
     | tar -czf "$OUT/results.tgz.tmp" -T -) && mv "$OUT/results.tgz.tmp" "$OUT/results.tgz"
  note "results.tgz: $(tar -tzf "$OUT/results.tgz" | tr '\n' ' ')"
}

"$py" - > "$OUT/device.json" <<'PY'
import json, os, platform, subprocess, time, torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                          "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
except OSError:
    smi = None
print(json.dumps({
    "what": "the paper profile (width-1.0 ResNet-18, CIFAR-10) run on a lent GPU machine by .device/paper.sh",
    "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "git_commit": os.environ.get("VINET_GIT_COMMIT"),
    "gpu": gpu, "nvidia_smi": smi, "cpu_count": os.cpu_count(),
    "torch": torch.__version__, "python": platform.python_version(),
    "settings": "no search has run at width 1.0: every head uses the settings the cpu "
                "profile's search chose at width 0.25 (params/paper.yaml)",
}, indent=2))
PY
note "$(cat "$OUT/device.json")"

stages 01_baseline_training || { note "stage 01 failed"; exit 1; }
cp "$run"/01_baseline.json "$run"/01_baseline.weights-*.pt "$run"/01_learning_curve.png "$OUT"/
note "weights in OUT: $(ls -la "$OUT" | tr '\n' ' ')"
results
stages 02_latent_features 03_vanishing_ideals 04_vinet_construction || { results; exit 1; }
results
stages 06_throughput_table || note "stage 06 failed"
results
stages 05_evaluation_ablations || note "stage 05 failed"
results
note "done"
