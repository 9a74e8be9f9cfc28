"""Serialization matrix: before/after initialize, bytes/disk, component/pipeline."""
import pytest
import spacy

from spacy_pmei.architectures import get_network

from conftest import SMALL_MODEL, TRAIN_DATA, make_example, triples_of


def _fresh():
    nlp = spacy.blank("en")
    nlp.add_pipe("pmei_relations", config={"model": SMALL_MODEL, "threshold": 0.4, "max_length": 64})
    return nlp


def _outputs(nlp):
    return [
        (triples_of(doc), [r.score for r in doc._.relations], [(e.start, e.end, e.label_) for e in doc.ents])
        for doc in nlp.pipe([t for t, _, _ in TRAIN_DATA])
    ]


@pytest.mark.parametrize("how", ["bytes", "disk"])
def test_component_roundtrip_before_initialize(how, tmp_path):
    pipe = _fresh().get_pipe("pmei_relations")
    pipe.add_label("born_in")
    pipe.add_entity_label("PER")
    other = _fresh().get_pipe("pmei_relations")
    if how == "bytes":
        other.from_bytes(pipe.to_bytes())
    else:
        pipe.to_disk(tmp_path / "pipe")
        other.from_disk(tmp_path / "pipe")
    assert other.labels == ("born_in",) and other.entity_labels == ("PER",)
    assert other.cfg["threshold"] == 0.4 and other.model.attrs["max_length"] == 64
    assert not other.is_initialized


@pytest.mark.parametrize("how", ["bytes", "disk"])
def test_component_roundtrip_after_initialize(trained_nlp, how, tmp_path):
    pipe = trained_nlp.get_pipe("pmei_relations")
    nlp2 = spacy.blank("en")
    nlp2.add_pipe("pmei_relations", config={"model": SMALL_MODEL})
    other = nlp2.get_pipe("pmei_relations")
    if how == "bytes":
        other.from_bytes(pipe.to_bytes())
    else:
        pipe.to_disk(tmp_path / "pipe")
        other.from_disk(tmp_path / "pipe")
    assert other.is_initialized and other.label_data == pipe.label_data
    assert get_network(other.model).config == get_network(pipe.model).config
    assert _outputs(nlp2) == _outputs(trained_nlp)


@pytest.mark.parametrize("how", ["bytes", "disk"])
def test_pipeline_roundtrip(trained_nlp, how, tmp_path):
    if how == "bytes":
        nlp2 = spacy.blank("en")
        nlp2.add_pipe("pmei_relations", config={"model": SMALL_MODEL})
        nlp2.from_bytes(trained_nlp.to_bytes())
    else:
        trained_nlp.to_disk(tmp_path / "nlp")
        nlp2 = spacy.load(tmp_path / "nlp")
    assert _outputs(nlp2) == _outputs(trained_nlp)


def test_pipeline_roundtrip_before_initialize(tmp_path):
    nlp = _fresh()
    nlp.to_disk(tmp_path / "nlp")
    nlp2 = spacy.load(tmp_path / "nlp")
    assert nlp2.get_pipe("pmei_relations").cfg == nlp.get_pipe("pmei_relations").cfg
    examples = [make_example(nlp2, *item) for item in TRAIN_DATA]
    nlp2.initialize(lambda: examples)  # a loaded, untrained pipeline still trains
    assert nlp2.update(examples)["pmei_relations"] > 0


def test_reloaded_pipeline_keeps_training(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "nlp")
    nlp2 = spacy.load(tmp_path / "nlp")
    examples = [make_example(nlp2, *item) for item in TRAIN_DATA]
    optimizer = nlp2.resume_training()
    losses = nlp2.update(examples, sgd=optimizer)
    assert 0 < losses["pmei_relations"] < 5


def test_network_saved_before_prior_var_floor_loads_with_the_default(trained_nlp):
    # Pipelines saved before the setting existed have no prior_var_floor in the network's
    # config; they load with the authors' 1e-8 they were trained with.
    import srsly
    import torch

    from spacy_pmei.pytorch_pmei import deserialize_network, serialize_network

    network = get_network(trained_nlp.get_pipe("pmei_relations").model)
    data = srsly.msgpack_loads(serialize_network(network))
    del data["config"]["prior_var_floor"]
    old = deserialize_network(None, srsly.msgpack_dumps(data), torch.device("cpu"))
    assert old.config["prior_var_floor"] == 1e-8 == old.map_r.prior_var_floor


def test_prior_var_floor_survives_a_roundtrip(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("pmei_relations", config={"model": dict(SMALL_MODEL, prior_var_floor=1e-4)})
    nlp.initialize(lambda: [make_example(nlp, *d) for d in TRAIN_DATA])
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    network = get_network(loaded.get_pipe("pmei_relations").model)
    assert loaded.config["components"]["pmei_relations"]["model"]["prior_var_floor"] == 1e-4
    assert network.config["prior_var_floor"] == 1e-4 == network.map_e.prior_var_floor


def test_learn_rate_scale_survives_a_roundtrip_and_old_pipelines_get_the_default(tmp_path):
    import srsly

    nlp = spacy.blank("en")
    nlp.add_pipe("pmei_relations", config={"model": SMALL_MODEL, "learn_rate_scale": 100.0})
    nlp.initialize(lambda: [make_example(nlp, *d) for d in TRAIN_DATA])
    nlp.to_disk(tmp_path / "nlp")
    assert spacy.load(tmp_path / "nlp").get_pipe("pmei_relations").cfg["learn_rate_scale"] == 100.0
    # a pipeline saved before the setting existed has it in neither its config nor the
    # component's cfg: it loads with 1.0, the rate it was trained at, and trains on
    config_text = (tmp_path / "nlp" / "config.cfg").read_text()
    (tmp_path / "nlp" / "config.cfg").write_text(config_text.replace("learn_rate_scale = 100.0\n", ""))
    cfg_path = tmp_path / "nlp" / "pmei_relations" / "cfg"
    cfg = srsly.read_json(cfg_path)
    del cfg["learn_rate_scale"]
    srsly.write_json(cfg_path, cfg)
    old = spacy.load(tmp_path / "nlp")
    assert old.get_pipe("pmei_relations").cfg["learn_rate_scale"] == 1.0
    losses = old.update([make_example(old, *d) for d in TRAIN_DATA], sgd=old.resume_training())
    assert losses["pmei_relations"] > 0
