"""The speed benchmark's pieces (spacy_pmei.speed); the figures belong in BENCHMARKS.md."""
from spacy_pmei.speed import format_table, peak_memory

from conftest import TRAIN_DATA


def test_peak_memory_measures_docs_and_pipeline_apart(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "model")
    texts = [text for text, *_ in TRAIN_DATA]
    docs_mb, pipeline_mb = peak_memory(tmp_path / "model", texts, 3_000)
    assert 0 <= docs_mb < 50 and 0 < pipeline_mb < 1_000
    docs_mb, pipeline_mb = peak_memory(tmp_path / "model", texts, 20, as_batch=5)
    assert docs_mb < 50 and pipeline_mb < 1_000


def test_table_states_the_goals():
    figures = dict(
        machine="test machine", data="sample", n_sentences=3, n_words=30,
        pmei_infer_wps=1000.0, ner_infer_wps=1900.0, pmei_infer_sps=50.0, ner_infer_sps=95.0,
        pmei_train_wps=300.0, ner_train_wps=800.0, infer_time_ratio=1.9, train_time_ratio=2.67,
        mem_10k_mb=110.0, mem_100k_mb=115.0, mem_batch50x100_mb=90.0, mem_ratio_100k_10k=115 / 110,
        docs_10k_mb=3.0, docs_100k_mb=30.0, docs_batch50x100_mb=2.0,
    )
    table = format_table(figures)
    assert "1.90x (goal <= 2x)" in table and "2.67x (goal <= 3x)" in table
    assert "| one 100,000-word document | 30 | 115 (1.05x the 10,000-word figure; goal within 10%) |" in table
    assert "Machine: test machine" in table
