import json
import random

import numpy as np
from transformers import AutoTokenizer

from training.data.batches import StepBatches, load_packed
from training.data.corpus import Document, corpus_documents, is_validation, stdlib_documents
from training.data.fim import split_code, to_fim
from training.data.prepare import pack
from training.tokenizer import CHAT_TEMPLATE, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, render_chat


def test_stdlib_corpus_skips_tests_and_generated_tables():
    names = [document.name for document in stdlib_documents()]

    assert "json/decoder.py" in names
    assert not any("/test/" in f"/{name}" or name.split("/")[-1].startswith("test_") for name in names)
    assert not any(name.startswith("encodings/") for name in names)


def test_corpus_drops_whitespace_insensitive_duplicates(monkeypatch):
    from training.data import corpus

    documents = [Document("stdlib", "a.py", "x = 1\n", True), Document("stdlib", "b.py", "x  =  1", True),
                 Document("stdlib", "c.py", "y = 2\n", True)]
    monkeypatch.setitem(corpus.READERS, "stdlib", lambda: iter(documents))

    assert [d.name for d in corpus_documents(("stdlib",))] == ["a.py", "c.py"]


def test_validation_split_is_stable_and_near_the_fraction():
    documents = [Document("domain", str(i), f"text number {i}", False) for i in range(2000)]

    held_out = [is_validation(d, 0.1) for d in documents]

    assert held_out == [is_validation(d, 0.1) for d in documents]
    assert 150 <= sum(held_out) <= 250


def test_fim_keeps_every_character_in_prefix_suffix_middle_order():
    text = "def add(a, b):\n    return a + b\n"

    fim = to_fim(text, random.Random(3))
    prefix = fim[len(FIM_PREFIX):fim.index(FIM_SUFFIX)]
    suffix = fim[fim.index(FIM_SUFFIX) + len(FIM_SUFFIX):fim.index(FIM_MIDDLE)]
    middle = fim[fim.index(FIM_MIDDLE) + len(FIM_MIDDLE):]

    assert fim.startswith(FIM_PREFIX)
    assert prefix + middle + suffix == text


def test_code_is_split_on_line_boundaries_within_the_size():
    text = "".join(f"line {i}\n" for i in range(100))

    pieces = split_code(text, 50)

    assert "".join(pieces) == text
    assert all(len(piece) <= 50 and piece.endswith("\n") for piece in pieces)


def test_training_chat_text_matches_the_tokenizers_chat_template(tiny_data_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_data_dir / "tokenizer")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is my parcel?"},
                {"role": "assistant", "content": "On its way."}]

    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert tokenizer.bos_token + render_chat(messages) == tokenizer.apply_chat_template(messages, tokenize=False)


def test_packing_wraps_documents_in_bos_eos_and_cuts_equal_rows():
    rows = pack([[5, 6, 7], [8, 9]], bos=0, eos=1, sequence_length=3)

    assert rows.tolist() == [[0, 5, 6, 7], [1, 0, 8, 9]]


def test_prepared_data_has_a_manifest_and_token_files(tiny_data_dir):
    manifest = json.loads((tiny_data_dir / "manifest.json").read_text())
    rows = load_packed(tiny_data_dir / "train.bin", manifest["sequence_length"])

    assert set(manifest["sources"]) == {"stdlib", "domain"}
    assert manifest["sources"]["stdlib"]["licence"] == "PSF-2.0"
    assert rows.shape == (manifest["train_sequences"], manifest["sequence_length"] + 1)
    assert rows.max() < manifest["vocab_size"]
    for source, report in manifest["sources"].items():
        assert load_packed(tiny_data_dir / f"val_{source}.bin", 64).shape[0] == report["val_sequences"]


def test_two_processes_together_see_exactly_the_single_process_batch():
    rows = np.arange(40 * 5, dtype=np.uint16).reshape(40, 5)
    single = StepBatches(rows, micro_batch=4, grad_accum=1, rank=0, world=1, seed=1)
    ranks = [StepBatches(rows, micro_batch=2, grad_accum=1, rank=r, world=2, seed=1) for r in (0, 1)]

    for _ in range(12):  # crosses an epoch boundary
        together = np.concatenate([batches.next_step()[0].numpy() for batches in ranks])
        assert together.tolist() == single.next_step()[0].numpy().tolist()
