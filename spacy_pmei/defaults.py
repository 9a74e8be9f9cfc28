"""Every default setting of pmei_relations and of its model, written once.

The factory's default_config, PMEIRelations.__init__, build_pmei_model and the
PyTorch network all read their defaults from here.
"""
from thinc.api import Config

# The component (pmei_relations): see PMEIRelations.__init__ for what each one does.
THRESHOLD = 0.5
ALPHA = 1e-3  # the authors' code (PMEI.md); the paper's Figure 3 agrees for exact match
BETA_E = 1e-6
BETA_R = 1e-6
MAX_LENGTH = 128
MAX_CELLS = 2**17
OVERWRITE_ENTS = True
ANCHOR_FALLBACK = True
LEARN_RATE_SCALE = 1.0
# Clip the gradient of this component's weights to this global norm before each update
# (0: off). The paper clips the global norm at 5; spaCy's optimizer clips each tensor
# (training.optimizer.grad_clip), which is what the shipped configs do.
GLOBAL_GRAD_CLIP = 0.0

COMPONENT_DEFAULTS = {
    "threshold": THRESHOLD,
    "alpha": ALPHA,
    "beta_e": BETA_E,
    "beta_r": BETA_R,
    "max_length": MAX_LENGTH,
    "max_cells": MAX_CELLS,
    "overwrite_ents": OVERWRITE_ENTS,
    "anchor_fallback": ANCHOR_FALLBACK,
    "learn_rate_scale": LEARN_RATE_SCALE,
    "global_grad_clip": GLOBAL_GRAD_CLIP,
}

# Which scores select the best model (spacy train) and which are shown.
SCORE_WEIGHTS = {
    "rel_exact_f": 1.0,
    "rel_exact_p": 0.0,
    "rel_exact_r": 0.0,
    "rel_partial_f": 0.0,
    "rel_partial_p": 0.0,
    "rel_partial_r": 0.0,
    "rel_string_f": 0.0,
    "rel_string_p": 0.0,
    "rel_string_r": 0.0,
    "ents_f": 0.0,
    "ents_p": 0.0,
    "ents_r": 0.0,
    "rel_exact_per_type": None,
    "rel_partial_per_type": None,
    "ents_per_type": None,
}

# The model (spacy-pmei.PMEI.v1).
DROPOUT = 0.1  # on H; nlp.update(drop=...) overrides it while training
# Whether H gets a dropout of its own, on top of the tok2vec's (the paper drops word
# embeddings only: False is the paper's choice).
DROPOUT_ON_H = True
# The starting bias of the early relation head C'_r: "prior" (log(0.01/0.99), as the
# final head) or "zero" (torch's usual start, near the paper's unstated one).
EARLY_REL_BIAS = "prior"
# The floor added to every variance of the stochastic maps: the posterior's always,
# the prior's by default (prior_var_floor). 1e-8 is the authors' code.
VAR_EPS = 1e-8

DEFAULT_MODEL_CONFIG = f"""
[model]
@architectures = "spacy-pmei.PMEI.v1"
variant = "pmei"
pair_width = null
prior_width = null
dropout = {DROPOUT}
dropout_on_h = {str(DROPOUT_ON_H).lower()}
early_rel_bias = "{EARLY_REL_BIAS}"
prior_var_floor = {VAR_EPS}

[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 100
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false

[model.tok2vec.encode]
@architectures = "spacy-pmei.BiLSTMEncoder.v1"
width = 100
depth = 1
# dropout between stacked layers only; one layer has none (H gets the model's dropout)
dropout = 0.0
# the embedding's width where it is not the encoder's (null: the same)
input_width = null
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]
