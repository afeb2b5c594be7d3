# The GPU image of the RayCluster's `gpu` worker group (deploy/raycluster.yaml): Ray 2.60.0's
# CUDA image plus the CUDA build of the pinned torch (its wheels bring the CUDA runtime;
# the node needs only the NVIDIA driver), then dnacnn.
# Build from the repository root:
#   docker build -f deploy/gpu.Dockerfile -t dnacnn:0.1.0-cuda .
# TORCH_CUDA picks the wheel index (cu126, cu128, ...): one that torch 2.13.0 is published for
# and that the nodes' driver supports (`nvidia-smi` shows the highest CUDA version it runs).
FROM rayproject/ray:2.60.0-py311-gpu
ARG TORCH_CUDA=cu128
WORKDIR /home/ray/dnacnn
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users platform ./platform
COPY --chown=ray:users jobs ./jobs
# torch first, from the CUDA index: `pip install .` then finds torch==2.13.0 satisfied
# (2.13.0+cu128 matches ==2.13.0) and keeps the CUDA build.
RUN pip install --no-cache-dir "torch==2.13.0" --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}" \
 && pip install --no-cache-dir . \
 && python -c "import torch; assert torch.version.cuda, 'a CPU torch was installed'"
