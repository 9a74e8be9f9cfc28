"""Train one run again in this process, logging each update's loss terms and gradients (`trace`)."""
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import srsly
import typer
from wasabi import msg

from ..errors import Errors

from .rows import read_rows, select_rows, train_command, train_overrides


def trace(
    run_dir: Optional[Path] = typer.Argument(
        None, help="A run's folder (with its run.json), e.g. DIR/ROW/seed0; or give --rows and --row"
    ),
    output: Path = typer.Option(..., "--output", help="Folder for trace.jsonl and the model trained again"),
    rows_path: Optional[Path] = typer.Option(
        None, "--rows", help="Without RUN_DIR: a rows file, to trace the run `run` would train for --row and --seed"
    ),
    row_name: str = typer.Option("", "--row", help="With --rows: the row's name"),
    seed: int = typer.Option(0, "--seed", help="With --rows: the seed"),
    max_steps: int = typer.Option(
        ..., "--max-steps", help="training.max_steps: spaCy stops after update N (the first is 0)"
    ),
    overrides_json: str = typer.Option("{}", "--overrides", help="More config overrides, as JSON"),
) -> None:
    """Train a run again, in this process, logging every update's loss terms and gradients.

    The run's own command (seed, config and overrides from its run.json, or as `run`
    would build it from --rows, --row and --seed, so no finished run is needed), so on the same
    machine, CPU and thread count it takes the same steps: the logging only reads
    tensors. Each line of OUTPUT/trace.jsonl is one update: the loss and its terms of
    eq. 15 (final heads, alpha * early heads, beta_e * KL_e, beta_r * KL_r), per stochastic
    map the `map_stats` figures (its prior's smallest variance and the largest
    (mu - prior_mu)^2 / prior_var), the gradient's norm over all PyTorch parameters and
    the parameter with the largest. To find what sets off a spike in the training loss.
    `--overrides '{"components.pmei_relations.model.prior_var_floor": 1e-4}'` trains
    the same run with a floor on the priors' variances.
    """
    if run_dir is not None and (rows_path is not None or row_name):
        msg.fail(Errors.E613, exits=1)
    if run_dir is not None:
        if not (run_dir / "run.json").is_file():
            msg.fail(Errors.E614.format(run_dir=run_dir), exits=1)
        command = srsly.read_json(run_dir / "run.json")["command"]
    elif rows_path is not None and row_name:
        row = select_rows(read_rows(rows_path), row_name)[0]
        command = shlex.join(train_command(row, seed, output / "model", -1, None))
    else:
        msg.fail(Errors.E615, exits=1)

    from spacy import util
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as train_nlp

    from ..architectures import get_network
    from ..diagnostics import MapStats

    config_path, overrides = train_overrides(command)
    overrides.update({**json.loads(overrides_json), "training.max_steps": max_steps})
    output.mkdir(parents=True, exist_ok=True)
    (output / "model").mkdir(exist_ok=True)
    # What `spacy train` does, with an observer on the component between initializing and training.
    config = util.load_config(config_path, overrides=overrides, interpolate=False)
    nlp = init_nlp(config, use_gpu=-1)
    pipe = nlp.get_pipe("pmei_relations")
    maps = MapStats(get_network(pipe.model), training_only=True)
    steps = [0]
    with (output / "trace.jsonl").open("w", encoding="utf8") as log:

        def write(record: Dict[str, Any]) -> None:
            log.write(json.dumps({"step": steps[0], **record, "maps": maps.read(reset=True)}) + "\n")
            steps[0] += 1

        remove = pipe.add_update_observer(write)
        try:
            train_nlp(nlp, output / "model", use_gpu=-1, stdout=sys.stdout, stderr=sys.stderr)
        finally:
            remove()
            maps.remove()
    msg.good(f"{steps[0]} updates traced: {output / 'trace.jsonl'}")
