"""The PMEI network in PyTorch: early classifiers, stochastic maps, final classifiers.

The torch modules of the package live here; other modules import torch only inside
the functions that hand arrays across (architectures.py's conversions, loss.py's
table BCE, encoders.py's BiLSTM), so that importing them stays cheap. Shapes: B segments, n words,
D = encoder width, T = BIOES tags, L = relation labels. See ../shared/PMEI.md
(the spec) for the equations; each class names the part it implements.
"""
import io
import os
from typing import Any, Dict, NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn

from .decoding import length_runs
from .defaults import DROPOUT, EARLY_REL_BIAS, VAR_EPS
from .errors import Errors

# Variants of Table 6 (PMEI.md "Ablations"), as the switches they turn.
VARIANTS: Dict[str, Dict[str, Any]] = {
    # early classifiers, stochastic map, explicit interaction, posterior network
    "pmei": {"early": True, "stochastic": True, "interaction": True, "posterior": "gru"},
    "pmei_no_sm": {"early": True, "stochastic": False, "interaction": True, "posterior": "gru"},
    "pmei_no_interaction": {"early": True, "stochastic": True, "interaction": False, "posterior": "gru"},
    "pmei_no_gru": {"early": True, "stochastic": True, "interaction": True, "posterior": "linear"},
    "mtl_sm": {"early": False, "stochastic": True, "interaction": False, "posterior": "linear"},
    "mtl": {"early": False, "stochastic": False, "interaction": False, "posterior": None},
}



def _one_thread_in_child() -> None:
    # A forked child (nlp.pipe(n_process=N) forks on Linux) that enters torch's
    # OpenMP pool inherited from a parent which already used it deadlocks; with
    # one thread it never enters the pool, and N processes share the cores anyway.
    torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_thread_in_child)

# What PMEINetwork.set_diagnostic accepts (None: off).
DIAGNOSTICS = (None, "early_as_final", "blank_early")
PAIR_PRIOR_BIAS = -4.6  # log(0.01 / 0.99)



class NetworkOutput(NamedTuple):
    """What PMEINetwork.forward returns, by name: torch tensors there, and the same
    fields as Thinc arrays once architectures.py has converted them.

    The early and KL entries are None where the variant has none. Logits, not
    probabilities: the losses are computed from logits for numerical stability.
    """

    ent_logits: Any  # B x n x T: the final entity head C_e
    rel_logits: Any  # B x n x n x L: the final relation head C_r
    early_ent_logits: Optional[Any] = None  # B x n x T: C'_e
    early_rel_logits: Optional[Any] = None  # B x n x n x L: C'_r
    kl_e: Optional[Any] = None  # scalar: KL of the ER map, summed over real words
    kl_r: Optional[Any] = None  # scalar: KL of the RC map

    def early_as_final(self) -> "NetworkOutput":
        """The early heads' logits in place of the final ones (diagnostics: what stage two adds)."""
        return self._replace(ent_logits=self.early_ent_logits, rel_logits=self.early_rel_logits)


class _SubjectMax(torch.autograd.Function):
    """The early table (passed through) and its max over real columns j; the backward
    adds the max's gradient into the table's. Autograd's own chain (a masked copy of the
    table, then a zero table, a scatter and an add) cost more than the table's loss.
    Same values to the bit; ties for the max share its gradient, as torch.amax's do.
    """

    @staticmethod
    def forward(ctx: Any, table: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        B, n, _, L = table.shape
        best = table.new_empty((B, n, L))
        runs = length_runs(mask.sum(dim=1).tolist())
        for a, b, length in runs:
            torch.amax(table[a:b, :, :length], dim=2, out=best[a:b])
        ctx.runs = runs
        ctx.save_for_backward(table, best)
        return table.view_as(table), best

    @staticmethod
    def backward(ctx: Any, d_table: Tensor, d_best: Tensor) -> Tuple[Tensor, None]:
        table, best = ctx.saved_tensors
        d = d_table.clone(memory_format=torch.contiguous_format)
        for a, b, length in ctx.runs:
            hit = (table[a:b, :, :length] == best[a:b, :, None]).to(d.dtype)
            share = d_best[a:b, :, None] / hit.sum(dim=2, keepdim=True)
            d[a:b, :, :length].addcmul_(hit, share)
        return d, None


def subject_scores(early_rel: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
    """f_t: g_i = sigmoid(max over real columns j of the early table's logits), B x n x L.

    Sigmoid is monotonic, so it is taken after the max, on B x n x L rather than on
    the whole table. RETURNS the early table (for the loss; the same values) and g.
    """
    table, best = _SubjectMax.apply(early_rel, mask)
    return table, torch.sigmoid(best)


class PairClassifier(nn.Module):
    """C_r / C'_r: y_ij = sigmoid(W_r ReLU(W_m [x_i ; x_j]) + b), as logits.

    W_m [x_i ; x_j] is computed as W_left x_i + W_right x_j, so the n x n x 2D
    concatenation is never built; only the n x n x hidden activation is.
    """

    def __init__(self, width: int, hidden: int, n_rels: int, bias: float = PAIR_PRIOR_BIAS) -> None:
        super().__init__()
        self.left = nn.Linear(width, hidden)
        self.right = nn.Linear(width, hidden, bias=False)
        self.out = nn.Linear(hidden, n_rels)
        # By default, start from a prior of ~1% positive cells instead of 50%: the tables
        # are almost all negatives, and an untrained model then predicts almost nothing
        # rather than n*n*L triples.
        nn.init.constant_(self.out.bias, bias)

    def forward(self, X: Tensor) -> Tensor:
        """X (Tensor): B x n x D. RETURNS (Tensor): B x n x n x L logits."""
        m = self.left(X).unsqueeze(2) + self.right(X).unsqueeze(1)
        # In place: the n x n x hidden tensor is the largest of the network, and the
        # sum's own backward does not need it.
        return self.out(torch.relu_(m))


class StochasticMap(nn.Module):
    """SM_k: posterior p(t | h, y'), prior r(t | y'), a sample or the mean, and KL(p || r).

    posterior "gru": mu = GRUCell_mu(y', h), s = GRUCell_sigma(y', h).
    posterior "linear": mu, s = Linear([y' ; h]) (PMEI w/o GRU; with no y' it is
    Linear(h), the MTL_SM map, whose prior is N(0, I)).
    stochastic=False: t = GRUCell(y', h), no sigma, no prior, no KL (PMEI w/o SM).
    The prior's variance is prior_s^2 + prior_var_floor (the authors' code: + 1e-8); the
    posterior's is s^2 + 1e-8.
    """

    def __init__(
        self,
        width: int,
        cond_width: int,
        prior_width: int,
        *,
        posterior: str,
        stochastic: bool,
        prior_var_floor: float = VAR_EPS,
    ) -> None:
        super().__init__()
        self.posterior = posterior
        self.prior_var_floor = prior_var_floor
        self.stochastic = stochastic
        self.cond_width = cond_width
        if posterior == "gru":
            self.mu = nn.GRUCell(cond_width, width)
            self.sigma = nn.GRUCell(cond_width, width) if stochastic else None
        else:
            self.mu = nn.Linear(cond_width + width, width)
            self.sigma = nn.Linear(cond_width + width, width) if stochastic else None
        if stochastic and cond_width > 0:
            self.prior_mu = nn.Sequential(
                nn.Linear(cond_width, prior_width), nn.Tanh(), nn.Linear(prior_width, width)
            )
            self.prior_sigma = nn.Sequential(
                nn.Linear(cond_width, prior_width), nn.Tanh(), nn.Linear(prior_width, width)
            )
        else:
            self.prior_mu = None
            self.prior_sigma = None
        self.sample_in_eval = False

    def _post(self, layer: nn.Module, h: Tensor, y: Optional[Tensor]) -> Tensor:
        B, n, D = h.shape
        if self.posterior == "gru":
            assert y is not None
            flat = layer(y.reshape(B * n, -1), h.reshape(B * n, D))
            return flat.reshape(B, n, D)
        return layer(h if y is None else torch.cat([y, h], dim=-1))

    def gaussians(self, h: Tensor, y: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """The posterior's and the prior's means and variances, each B x n x D.

        Only for a stochastic map. The prior sees y' with gradients stopped; with no y'
        (MTL_SM) it is N(0, I).
        """
        assert self.sigma is not None
        mu = self._post(self.mu, h, y)
        s = self._post(self.sigma, h, y)
        var = s * s + VAR_EPS
        if self.prior_mu is not None and self.prior_sigma is not None and y is not None:
            y_stop = y.detach()
            prior_mu = self.prior_mu(y_stop)
            prior_s = self.prior_sigma(y_stop)
            prior_var = prior_s * prior_s + self.prior_var_floor
        else:
            prior_mu = torch.zeros_like(mu)
            prior_var = torch.ones_like(var)
        return mu, var, prior_mu, prior_var

    def forward(
        self, h: Tensor, y: Optional[Tensor], mask: Tensor
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """Map H (and y') to T; also return KL summed over valid words and dims.

        h (Tensor): B x n x D shared representation.
        y (Optional[Tensor]): B x n x C interaction input, or None (MTL_SM).
        mask (Tensor): B x n bool, True for real words.
        RETURNS (Tuple[Tensor, Optional[Tensor]]): T (B x n x D) and the KL sum, or None.
        """
        if not self.stochastic or not (self.training or self.sample_in_eval):
            # Predicting with the mean needs neither sigma nor the prior nor the KL.
            return self._post(self.mu, h, y), None
        mu, var, prior_mu, prior_var = self.gaussians(h, y)
        t = mu + var.sqrt() * torch.randn_like(mu)
        kl = gaussian_kl(mu, var, prior_mu, prior_var)
        kl = (kl * mask.unsqueeze(-1).to(kl.dtype)).sum()
        return t, kl


def gaussian_kl(mu: Tensor, var: Tensor, prior_mu: Tensor, prior_var: Tensor) -> Tensor:
    """KL(N(mu, var) || N(prior_mu, prior_var)) per element, for diagonal Gaussians."""
    return 0.5 * (
        torch.log(prior_var) - torch.log(var) + (var + (mu - prior_mu) ** 2) / prior_var - 1.0
    )


class PMEINetwork(nn.Module):
    """The PMEI heads on a padded shared representation H.

    forward(H, mask) returns a NetworkOutput.
    """

    def __init__(
        self,
        *,
        width: int,
        n_tags: int,
        n_rels: int,
        variant: str = "pmei",
        pair_width: Optional[int] = None,
        prior_width: Optional[int] = None,
        dropout: float = DROPOUT,
        prior_var_floor: float = VAR_EPS,
        early_rel_bias: str = EARLY_REL_BIAS,
    ) -> None:
        super().__init__()
        self.config = {
            "width": width,
            "n_tags": n_tags,
            "n_rels": n_rels,
            "variant": variant,
            "pair_width": pair_width,
            "prior_width": prior_width,
            "dropout": dropout,
            "prior_var_floor": prior_var_floor,
            "early_rel_bias": early_rel_bias,
        }
        switches = VARIANTS[variant]
        pair_width = pair_width or width
        prior_width = prior_width or width
        self.early = switches["early"]
        self.interaction = switches["interaction"]
        self.dropout = nn.Dropout(dropout)
        if self.early:
            self.early_ent = nn.Linear(width, n_tags)
            bias = PAIR_PRIOR_BIAS if early_rel_bias == "prior" else 0.0
            self.early_rel = PairClassifier(width, pair_width, n_rels, bias=bias)
        self.map_e: Optional[StochasticMap] = None
        self.map_r: Optional[StochasticMap] = None
        if switches["posterior"] is not None:
            if not self.early:
                cond_e = cond_r = 0
            elif self.interaction:
                cond_e = cond_r = n_rels + n_tags
            else:
                cond_e, cond_r = n_tags, n_rels
            kwargs = {
                "posterior": switches["posterior"],
                "stochastic": switches["stochastic"],
                "prior_var_floor": prior_var_floor,
            }
            self.map_e = StochasticMap(width, cond_e, prior_width, **kwargs)
            self.map_r = StochasticMap(width, cond_r, prior_width, **kwargs)
        self.ent = nn.Linear(width, n_tags)
        self.rel = PairClassifier(width, pair_width, n_rels)
        self.diagnostic: Optional[str] = None

    def set_dropout(self, rate: float) -> None:
        """Set the dropout rate on H (spaCy's `drop` reaches torch through here)."""
        self.dropout.p = float(rate)

    def set_diagnostic(self, name: Optional[str]) -> None:
        """Turn a diagnostic of spacy_pmei.diagnostics on (its name) or off (None).

        "early_as_final": return the early heads' logits in place of the final ones.
        "blank_early": feed the stochastic maps blank early predictions (every word O
        with certainty, no relation anywhere) instead of y'.
        """
        if name not in DIAGNOSTICS:
            raise ValueError(Errors.E032.format(name=name, options=DIAGNOSTICS))
        self.diagnostic = name

    def set_sample_in_eval(self, sample: bool) -> None:
        """Predict with one sample of T instead of the mean (for benchmarks only)."""
        for sm in (self.map_e, self.map_r):
            if sm is not None:
                sm.sample_in_eval = bool(sample)

    def forward(self, H: Tensor, mask: Tensor) -> NetworkOutput:
        """H (Tensor): B x n x D. mask (Tensor): B x n bool. RETURNS (NetworkOutput)."""
        H = self.dropout(H)
        early_ent = early_rel = None
        y_e = y_r = y = None
        if self.early:
            early_ent = self.early_ent(H)
            early_rel, y_r = subject_scores(self.early_rel(H), mask)
            y_e = torch.softmax(early_ent, dim=-1)
            if self.diagnostic == "blank_early":
                y_e = torch.zeros_like(y_e)
                y_e[..., 0] = 1.0  # tag 0 is O
                y_r = torch.zeros_like(y_r)
            y = torch.cat([y_r, y_e], dim=-1)
        kl_e = kl_r = None
        if self.map_e is None or self.map_r is None:
            T_e = T_r = H
        elif self.interaction or not self.early:
            T_e, kl_e = self.map_e(H, y, mask)
            T_r, kl_r = self.map_r(H, y, mask)
        else:
            T_e, kl_e = self.map_e(H, y_e, mask)
            T_r, kl_r = self.map_r(H, y_r, mask)
        out = NetworkOutput(self.ent(T_e), self.rel(T_r), early_ent, early_rel, kl_e, kl_r)
        return out.early_as_final() if self.diagnostic == "early_as_final" else out


class PackedBiLSTM(nn.Module):
    """A BiLSTM over padded sequences that never reads the padding.

    thinc's PyTorchLSTM runs the backward direction over the padding too, so a
    sentence's vectors change with the longest sentence of its batch (nlp.pipe
    would disagree with nlp()). Packing the sequences by length avoids that.
    """

    def __init__(self, width: int, depth: int = 1, dropout: float = 0.0, input_width: int = 0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_width or width,
            width // 2,
            num_layers=depth,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if depth > 1 else 0.0,
        )

    def forward(self, X: Tensor, lengths: Tensor) -> Tensor:
        """X (Tensor): B x n x width, lengths (Tensor): B int64 on the CPU, all > 0."""
        packed = nn.utils.rnn.pack_padded_sequence(
            X, lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=X.shape[1])
        return out


class Placeholder(nn.Module):
    """Stands in for PMEINetwork until initialize() knows the label and width sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.config: Optional[Dict[str, Any]] = None


def serialize_network(module: nn.Module) -> bytes:
    """Write the module's constructor settings and weights, so it rebuilds itself on load."""
    import srsly

    config = getattr(module, "config", None)
    buf = io.BytesIO()
    if config is not None:
        torch.save(module.state_dict(), buf)
    return srsly.msgpack_dumps({"config": config, "state": buf.getvalue()})


def deserialize_network(module: nn.Module, data: bytes, device: "torch.device") -> nn.Module:
    """Rebuild a PMEINetwork (or the Placeholder) from serialize_network's bytes."""
    import srsly

    msg = srsly.msgpack_loads(data)
    config = msg["config"]
    if config is None:
        return Placeholder().to(device)
    network = PMEINetwork(**config)
    state = torch.load(io.BytesIO(msg["state"]), map_location=device, weights_only=True)
    network.load_state_dict(state)
    return network.to(device)
