#!/usr/bin/env bash
# Download this project's runtime wheels for an offline Linux x86_64 machine (a GPU box with no
# internet), so `python -m facts collect`, `pyinfra ... --dry` and `python -m bench` run there.
# Usage: scripts/wheelhouse.sh OUT_DIR [PYTHON_VERSION] [PACKAGE...]
#   default packages: pyinfra and the bench/facts imports missing from a typical CUDA image.
# On the target: python3 -m pip install --no-index --no-deps --target /tmp/site OUT_DIR/*.whl
#                export PYTHONPATH=/tmp/site:$PWD
set -euo pipefail
out=${1:?usage: wheelhouse.sh OUT_DIR [PYTHON_VERSION] [PACKAGE...]}
py=${2:-3.12}
shift $(( $# >= 2 ? 2 : 1 ))
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(
  pyinfra==3.10.0 click distro gevent greenlet zope.event zope.interface paramiko bcrypt cryptography
  invoke pynacl cffi pycparser typeguard types-paramiko typing-extensions jinja2 MarkupSafe packaging
  python-dateutil six
  pydantic pydantic-core annotated-types typing-inspection
  openai jiter sniffio httpx2 httpcore2 truststore anyio h11 certifi idna gguf
)
# pin each to the version this checkout's .venv runs, so the offline box runs what we tested
if [ -x .venv/bin/python ]; then
  mapfile -t pkgs < <(.venv/bin/python - "${pkgs[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for name in sys.argv[1:]:
    try:
        print(name if '==' in name else f'{name}=={version(name)}')
    except PackageNotFoundError:
        print(name)
PY
  )
fi
mkdir -p "$out"
plat=()
for n in 17 24 27 28 31 34; do plat+=(--platform "manylinux_2_${n}_x86_64"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
  "${plat[@]}" --platform manylinux2014_x86_64 --platform any -d "$out" "${pkgs[@]}"
echo "wrote $(ls "$out"/*.whl | wc -l) wheels ($(du -sh "$out" | cut -f1)) to $out"
