"""spacy_pmei.diagnostics and the component's diagnostics API (get_loss_terms, update observers)."""
import json

import pytest
import spacy

from spacy_pmei import diagnostics
from spacy_pmei.architectures import get_network
from spacy_pmei.pytorch_pmei import VARIANTS

from conftest import SMALL_MODEL, TRAIN_DATA, make_example


@pytest.mark.parametrize("variant", [v for v in VARIANTS if VARIANTS[v]["early"]])
def test_probe_hooks_swap_and_blank_the_early_predictions(variant):
    """`probe`'s two interventions do what its table says, for every variant with early heads."""
    import torch

    from spacy_pmei.pytorch_pmei import PMEINetwork

    torch.manual_seed(0)
    net = PMEINetwork(width=8, n_tags=5, n_rels=3, variant=variant).eval()
    H, mask = torch.randn(2, 6, 8), torch.ones(2, 6, dtype=torch.bool)
    with torch.no_grad():
        out = net(H, mask)
        with diagnostics.early_as_final(net):
            swapped = net(H, mask)
        with diagnostics.blank_early(net):
            blanked = net(H, mask)
        assert torch.equal(swapped[0], out[2]) and torch.equal(swapped[1], out[3])
        # the untrained early heads say something, so blanking them changes the final heads
        assert not torch.allclose(blanked[1], out[1])
        # early heads that predict O everywhere with certainty and no relation: blanking is a no-op
        net.early_ent.weight.zero_()
        net.early_ent.bias.fill_(-1e4)
        net.early_ent.bias[0] = 1e4
        net.early_rel.out.weight.zero_()
        net.early_rel.out.bias.fill_(-1e4)
        certain = net(H, mask)
        with diagnostics.blank_early(net):
            blanked = net(H, mask)
    assert torch.allclose(blanked[0], certain[0]) and torch.allclose(blanked[1], certain[1])
    # the hooks are gone afterwards
    with torch.no_grad():
        assert torch.equal(net(H, mask)[1], certain[1])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_map_stats_measure_the_kl_the_loss_sees_and_tiny_prior_variances(variant):
    """`probe`'s KL per word is the KL the training loss gets, over real words only."""
    import torch

    from spacy_pmei.pytorch_pmei import PMEINetwork

    torch.manual_seed(0)
    net = PMEINetwork(width=8, n_tags=5, n_rels=3, variant=variant).eval()
    H = torch.randn(2, 6, 8)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    net.set_sample_in_eval(True)
    with torch.no_grad(), diagnostics.map_stats(net) as found:
        out = net(H, mask)
    stochastic = [k for k, sm in (("e", net.map_e), ("r", net.map_r)) if sm is not None and sm.stochastic]
    assert sorted(found) == stochastic
    for k, kl in zip("er", out[4:]):
        if k in found:
            assert found[k]["kl_per_word"] == pytest.approx(float(kl) / 10, rel=1e-4, abs=0.01)
            assert found[k]["prior_var_tiny"] < 1.0
    if net.map_r is not None and net.map_r.prior_sigma is not None:
        # a prior whose sigma branch outputs 0 everywhere has the floor variance, 1e-8
        last = net.map_r.prior_sigma[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()
        net.set_sample_in_eval(False)  # measured from the maps' inputs, mean or sample
        with torch.no_grad(), diagnostics.map_stats(net) as found:
            net(H, mask)
        assert found["r"]["prior_var_tiny"] == 1.0
        assert found["r"]["prior_var_min"] == pytest.approx(1e-8)
        assert found["e"]["prior_var_tiny"] < 1.0


def small_trained(variant="pmei"):
    nlp = spacy.blank("en")
    nlp.add_pipe("pmei_relations", config={"model": {**SMALL_MODEL, "variant": variant}})
    examples = [make_example(nlp, *item) for item in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: examples)
    return nlp, examples, optimizer


@pytest.mark.parametrize("variant", ["pmei", "mtl"])
def test_loss_terms_sum_to_the_loss(variant):
    nlp, examples, _ = small_trained(variant)
    pipe = nlp.get_pipe("pmei_relations")
    outputs, _ = pipe.model.begin_update([eg.predicted for eg in examples])
    loss, _ = pipe.get_loss(examples, outputs)
    terms = pipe.get_loss_terms(examples, outputs)
    assert set(terms) == {"final", "early", "kl_e", "kl_r"}
    assert sum(terms.values()) == pytest.approx(loss, rel=1e-9)
    assert terms["final"] > 0
    if variant == "mtl":  # no early heads, no maps
        assert terms["early"] == terms["kl_e"] == terms["kl_r"] == 0.0
    else:
        assert terms["early"] > 0 and terms["kl_e"] > 0 and terms["kl_r"] > 0
        # weighted as eq. 15 weights them: doubling alpha doubles the early term
        pipe.cfg["alpha"] *= 2
        assert pipe.get_loss_terms(examples, outputs)["early"] == pytest.approx(2 * terms["early"])


def test_update_observers_see_each_update_and_can_be_removed():
    nlp, examples, optimizer = small_trained()
    pipe = nlp.get_pipe("pmei_relations")
    seen = []
    remove = pipe.add_update_observer(seen.append)
    losses = nlp.update(examples, sgd=optimizer)
    nlp.update(examples[:1], sgd=optimizer)
    assert len(seen) == 2
    first = seen[0]
    assert first["docs"] == len(examples) and seen[1]["docs"] == 1
    assert first["max_len"] == max(len(eg.reference) for eg in examples)
    assert first["loss"] == pytest.approx(losses["pmei_relations"])
    assert first["final"] + first["early"] + first["kl_e"] + first["kl_r"] == pytest.approx(first["loss"])
    name, largest = first["grad_max"]
    assert first["grad_norm"] > 0 and 0 < largest <= first["grad_norm"] and isinstance(name, str)
    json.dumps(first)  # what `trace` writes
    remove()
    nlp.update(examples, sgd=optimizer)
    assert len(seen) == 2


def test_map_stats_over_updates_count_training_passes_only():
    nlp, examples, optimizer = small_trained()
    network = get_network(nlp.get_pipe("pmei_relations").model)
    stats = diagnostics.MapStats(network, training_only=True)
    nlp.update(examples, sgd=optimizer)
    found = stats.read(reset=True)
    assert set(found) == {"e", "r"} and found["r"]["kl_per_word"] > 0
    list(nlp.pipe(eg.text for eg in examples))  # prediction (eval mode) is not counted
    assert stats.read() == {}
    stats.remove()
    nlp.update(examples, sgd=optimizer)
    assert stats.read() == {}


def test_predictions_are_unchanged_after_the_diagnostics():
    nlp, examples, _ = small_trained()
    network = get_network(nlp.get_pipe("pmei_relations").model)
    texts = [eg.text for eg in examples]
    before = [d._.relations for d in nlp.pipe(texts)]
    with diagnostics.early_as_final(network):
        list(nlp.pipe(texts))
    with diagnostics.blank_early(network):
        list(nlp.pipe(texts))
    with diagnostics.map_stats(network) as found:
        list(nlp.pipe(texts))
    assert set(found) == {"e", "r"}
    after = [d._.relations for d in nlp.pipe(texts)]
    key = lambda rels: [(r.head.start, r.label, r.tail.start, r.score) for r in rels]  # noqa: E731
    assert [key(r) for r in before] == [key(r) for r in after]
    with pytest.raises(ValueError, match="E032"):
        network.set_diagnostic("no_such_thing")
