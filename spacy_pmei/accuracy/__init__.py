"""The accuracy benchmark: train and score each row of a rows file, then one results table.

    python -m spacy_pmei.accuracy run ROWS --runs-dir DIR [--only NAMES] [--max-epochs N] [--gpu-id G]
    python -m spacy_pmei.accuracy table ROWS --runs-dir DIR --output PREFIX
    python -m spacy_pmei.accuracy package ROWS ROW --runs-dir DIR --output-dir OUT --name NAME
    python -m spacy_pmei.accuracy probe ROWS --runs-dir DIR --output PREFIX [--only NAMES]
    python -m spacy_pmei.accuracy rescore ROWS --runs-dir DIR [--only NAMES]
    python -m spacy_pmei.accuracy trace (RUN_DIR | --rows ROWS --row NAME [--seed S]) --output DIR --max-steps N

(`python scripts/bench_rows.py ...` is the same.) One module per role:
- rows: the rows file and each run's `spacy train` command;
- running: `run` trains and scores every (row, seed) not done yet, keeping each in
  DIR/ROW/seedS/run.json (so `run` resumes, and rows can run on different machines);
  `rescore` scores finished runs again; `package` builds a wheel of a row's best run on dev;
- tables: `table` writes PREFIX.json and PREFIX.md: mean and spread over seeds per row,
  each run's command, training time, the machine, learning curves read from each
  train.log, and for the rows file's `pairs` the difference of two rows seed by seed
  at equal epochs;
- probe: `probe` looks into the finished models on dev only (other thresholds, the
  early heads' own score, the final heads' with the early predictions blanked), through
  spacy_pmei.diagnostics;
- trace: `trace` trains one run again, step for step, logging each update's loss terms
  and gradient norm through the component's update observers.
The speed benchmark is another thing: spacy_pmei.speed (`python -m spacy_pmei benchmark`).
"""
