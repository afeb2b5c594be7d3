#!/usr/bin/env bash
# The GPU checks of variant scoring, as one command on a lent device machine (one H200,
# 16 CPUs, Python 3.12 with CUDA torch, no package registry): BENCHMARKS.md records what it printed.
#
# What the machine lacks travels as wheels in .whl/ (git-ignored; bench/device_wheels.sh builds it):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     ray==2.60.0 pysam jsonschema jsonschema-specifications referencing rpds-py
# with Ray's wheel repacked without ray/jars, ray/rllib and ray/llm (79 MB -> 43 MB: a call
# carries 64 MiB). Then, through the device tool: carry [".whl"], command "bash bench/device_check.sh".
#
# Knobs (environment): ENGINE_S, ENGINE_ARGS, FEED_S, SHARING_S, SHARING_K, JOB_S, SNVS, BATCH, SHARD,
# PRECISIONS, ACTORS_PER_GPU (e.g. "16 8 4": one job each), TESTS_S.
#
# Steps, each bounded, each log under $OUT: the engine in one process (bench/gpu_scoring.py;
# with a dense VCF's SNVs, towers shared or not), one actor's shard split into engine and feed
# (bench/shard_feed.py), K processes sharing the GPU (bench/gpu_sharing.py), the whole `dnacnn score` job from VCF to
# Parquet (bench/score_job.py), the CUDA tests.
set -u
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/platform PYTHONUNBUFFERED=1 DNACNN_PROGRESS=0
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
python3 -c "import torch, ray, pysam; print('torch', torch.__version__, torch.cuda.get_device_name(0), '| ray', ray.__version__, '| pysam', pysam.__version__)" || exit 1
nproc

timeout "${ENGINE_S:-240}" python3 bench/gpu_scoring.py --json "$OUT/gpu_scoring.json" --profile "$OUT/profile.txt" \
  ${ENGINE_ARGS:-} 2>&1 | tee "$OUT/gpu_scoring.log"
# one scoring actor's shard, split: the engine on the GPU against its CPU-side feed (dense SNVs)
timeout "${FEED_S:-90}" python3 bench/shard_feed.py --synthetic-genome 5 --snvs 100000 --rc --precision bf16 \
  --device cuda --repeats 1 2>&1 | tee "$OUT/shard_feed.log"
# the GPU's side of the job alone: K processes scoring windows in memory, sharing the GPU
timeout "${SHARING_S:-150}" python3 bench/gpu_sharing.py --processes "${SHARING_K:-1,4,16}" 2>&1 | tee "$OUT/gpu_sharing.log"

# the job at each precision and number of actors sharing the GPU (time-slicing 16 CUDA contexts
# may cost more than it feeds), with the GPU's utilisation sampled every second beside it
for precision in ${PRECISIONS:-bf16 fp32}; do
  for apg in ${ACTORS_PER_GPU:-16}; do
    run="${precision}_apg$apg"
    nvidia-smi dmon -s u -d 1 > "$OUT/dmon_$run.txt" 2>&1 &
    dmon=$!
    timeout "${JOB_S:-150}" python3 bench/score_job.py --synthetic-genome 50 --snvs "${SNVS:-1000000}" --rc \
      --options "--device cuda --precision $precision --batch-size ${BATCH:-4096} --shard-variants ${SHARD:-20000} --actors-per-gpu $apg" \
      2>&1 | tee "$OUT/score_job_$run.log"
    kill "$dmon" 2>/dev/null
  done
done
timeout "${TESTS_S:-150}" python3 -m pytest -q -p no:cacheprovider tests/test_models.py tests/test_mutant_effect.py \
  tests/test_actor_layout.py tests/test_train_steps.py -k "gpu or cuda" 2>&1 | tee "$OUT/pytest_gpu.log"
