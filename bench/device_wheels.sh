#!/usr/bin/env bash
# Build .whl/ for bench/device_check.sh: the packages the device machine's Python 3.12 lacks,
# as x86-64 wheels, Ray's repacked without its Java jar, RLlib and ray.llm (79 MB -> 43 MB:
# a device call carries 64 MiB in all). Run in the repository root; .whl/ is git-ignored.
set -euo pipefail
exclude="$(git rev-parse --git-dir)/info/exclude"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  ray==2.60.0 pysam jsonschema jsonschema-specifications referencing rpds-py
python3 - .whl/ray-*.whl <<'PY'
import sys, zipfile
path = sys.argv[1]
dropped = ("ray/jars/", "ray/rllib/", "ray/llm/")
with zipfile.ZipFile(path) as src:
    items = [(i, src.read(i)) for i in src.infolist() if not i.filename.startswith(dropped)]
kept = {i.filename for i, _ in items}
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
    for info, data in items:
        if info.filename.endswith(".dist-info/RECORD"):  # the files still there
            data = "".join(line + "\n" for line in data.decode().splitlines()
                           if line.split(",")[0] in kept or line.split(",")[0] == info.filename).encode()
        dst.writestr(info, data, zipfile.ZIP_DEFLATED)
PY
du -sh .whl && ls .whl
