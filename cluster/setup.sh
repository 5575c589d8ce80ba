#!/usr/bin/env bash
# The setup of every node of an mmray Ray cluster, shared by cluster.yaml (AWS) and cluster-local.yaml (your own
# machines): the launcher runs it after syncing this project to ~/mmray, and again on `ray up` whenever the
# project's files changed.
#
#   bash ~/mmray/cluster/setup.sh [--torch cpu|cuda] [--venv DIR]
#
#   --torch cpu   the CPU build of torch 2.13.0 (the default): a bare torch==2.13.0 from PyPI is the
#                 multi-GB CUDA build
#   --torch cuda  the CUDA build (PyPI's default Linux x86_64 wheel), for GPU nodes
#   --venv DIR    create a virtual environment at DIR with python3.11 (once), install into it and activate it
#                 in ~/.bashrc, so that everything the launcher runs on the node later (`ray start`, `ray stop`,
#                 jobs, `ray exec`) uses it. Without it the packages go to the Python on the PATH (an image's).
#
# Every step can run again: nothing is created twice, and pip leaves what already satisfies the pins.
set -euo pipefail

torch=cpu
venv=""
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) torch="$2"; shift 2 ;;
    --venv) venv="$2"; shift 2 ;;
    *) echo "cluster/setup.sh: unknown option $1 (see the top of the file)" >&2; exit 2 ;;
  esac
done
case "$torch" in
  cpu | cuda) ;;
  *) echo "cluster/setup.sh: --torch must be cpu or cuda, not $torch" >&2; exit 2 ;;
esac

remember() {  # a line in ~/.bashrc, once: the launcher's commands run in interactive login shells that read it
  grep -qxF "$1" ~/.bashrc 2>/dev/null || echo "$1" >> ~/.bashrc
}

# Token mode for shells on the nodes too (`ray exec CLUSTER.yaml 'ray status'`).
remember 'export RAY_AUTH_MODE=token'

if [ -n "$venv" ]; then
  venv="${venv/#\~/$HOME}"
  if [ ! -x "$venv/bin/python" ]; then
    command -v python3.11 >/dev/null || { echo "cluster/setup.sh: python3.11 is not on this node's PATH" >&2; exit 1; }
    python3.11 -m venv "$venv"
  fi
  remember "source $venv/bin/activate"
  # shellcheck disable=SC1091
  source "$venv/bin/activate"
fi

if [ "$torch" = cpu ]; then
  pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
else
  pip install --no-cache-dir torch==2.13.0
fi
# mmray with the dependency pins of its pyproject.toml (ray==2.60.0 and the rest), editable: `ray up` after a
# code change re-syncs ~/mmray and the nodes run the new code without a reinstall.
pip install --no-cache-dir -e ~/mmray
