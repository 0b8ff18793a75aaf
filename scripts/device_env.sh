# Sourced by the GPU-box example scripts (h200_example, placement_example, ik_vs_mainline): the
# Python they run and its offline wheels, and the stage log line. Why one file: the device has no
# internet, so every script unpacks the same wheelhouse the same way.
# Needs: $root (the repo) and $wheels (the wheel folder) set by the caller.
if [ -d "$wheels" ]; then export PYTHONPATH=/tmp/omni-site:$root; else export PYTHONPATH=$root; fi
py=${PYTHON:-python3}
log() { printf '\n=== %s (%s s)\n' "$*" "$SECONDS"; }

unpack_wheels() { # once per machine: the wheelhouse as a site folder on PYTHONPATH
  if [ -d "$wheels" ] && [ ! -f /tmp/omni-site/.done ]; then
    mkdir -p /tmp/omni-site
    for w in "$wheels"/*.whl; do "$py" -m zipfile -e "$w" /tmp/omni-site; done
    touch /tmp/omni-site/.done
  fi
}
