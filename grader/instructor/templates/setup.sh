#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image; the
# zip is unpacked in /autograder/source. It installs only what grading needs.
set -euo pipefail
SOURCE=/autograder/source
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || need+=(python3.11 python3.11-venv)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
PY=python3
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || PY=python3.11
"$PY" -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet $("$PY" "$SOURCE/tools/requirements.py" --grading)
