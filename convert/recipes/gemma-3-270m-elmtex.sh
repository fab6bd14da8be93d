#!/usr/bin/env bash
# Reproduce the shipped default adapter (models/gemma-3-270m-elmtex/) from the repository root:
#
#   convert/recipes/gemma-3-270m-elmtex.sh
#
# Two epochs, as two pipeline runs so that the first one's adapter stays inspectable and the second
# can be rerun alone. The result is registered in the user models folder; copy it into models/ with
# `edge-extract-convert register ... --models-dir models` to ship it.
set -euo pipefail
convert="${EDGE_EXTRACT_CONVERT:-.venv/bin/edge-extract-convert}"
"$convert" pipeline --config convert/recipes/gemma-3-270m-elmtex-epoch1.toml
"$convert" pipeline --config convert/recipes/gemma-3-270m-elmtex-epoch2.toml
