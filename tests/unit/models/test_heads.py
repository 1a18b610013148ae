"""Task heads against transformers: BertForSequenceClassification,
RobertaForSequenceClassification, GPT2ForSequenceClassification, BertForMaskedLM and
RobertaForMaskedLM folders load (the base model's prefixed keys read), their logits equal
transformers' within 1e-5 on padded batches, ``classify`` and ``fill_mask`` equal
transformers' pipelines, and ``save`` writes folders transformers loads with the same logits.
The base models load a task folder too and keep its head for ``save``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from gtdsl.diagnostics import GtdslError
from gtdsl.models import bert as B
from gtdsl.models.gpt2 import GPT2, GPT2ForSequenceClassification
from gtdsl.models.weights import ModelLoadError
from gtdsl.runtime.tensorfile import read_safetensors, write_safetensors

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "is", "good", "bad", "day",
         "very", "and", "it", "was"]


def _tokenizer(folder: Path, roberta: bool) -> Any:
    """A word-level tokenizer.json in BERT's layout ([CLS] ... [SEP]) or RoBERTa's
    (<s> ... </s>), and the same as transformers' fast tokenizer (for its pipelines)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    specials = ROBERTA_SPECIALS if roberta else SPECIALS
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    unk = specials[3] if roberta else "[UNK]"
    tok = Tokenizer(WordLevel(vocab, unk_token=unk))
    tok.pre_tokenizer = Whitespace()
    tok.add_special_tokens(specials)
    first, last = (specials[0], specials[2]) if roberta else ("[CLS]", "[SEP]")
    tok.post_processor = TemplateProcessing(
        single=f"{first} $A {last}", special_tokens=[(first, vocab[first]), (last, vocab[last])])
    tok.save(str(folder / "tokenizer.json"))
    names = dict(zip(["bos_token", "pad_token", "eos_token", "unk_token", "mask_token"],
                     specials)) if roberta else dict(
        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]")
    return PreTrainedTokenizerFast(tokenizer_object=tok, **names)


BERT = dict(vocab_size=21, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=24, max_position_embeddings=24, hidden_act="gelu_new")


def _task(tmp_path: Path, name: str, seed: int = 0, **config: Any) -> tuple[Path, Any, Any]:
    """A transformers task model saved with ``save_pretrained`` and its tokenizer: the
    folder, the model, the fast tokenizer."""
    import transformers

    roberta = name.startswith("Roberta")
    config_cls = transformers.RobertaConfig if roberta else transformers.BertConfig
    extra = {"pad_token_id": 1} if roberta else {}
    torch.manual_seed(seed)
    hf = getattr(transformers, name)(config_cls(**BERT, **extra, **config)).eval()
    folder = tmp_path / name
    hf.save_pretrained(folder)
    return folder, hf, _tokenizer(folder, roberta)


def _batch(roberta: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (the pad token where the mask is 0) and the mask."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 21, (3, 8), generator=g)
    mask = torch.ones_like(ids)
    for row, n in enumerate((8, 5, 3)):
        mask[row, n:] = 0
        ids[row, n:] = 1 if roberta else 0
    return ids, mask


CLASSIFIERS = [("BertForSequenceClassification", B.BertForSequenceClassification),
               ("RobertaForSequenceClassification", B.RobertaForSequenceClassification)]
MASKED = [("BertForMaskedLM", B.BertForMaskedLM), ("RobertaForMaskedLM", B.RobertaForMaskedLM)]


@pytest.mark.parametrize("name,cls", CLASSIFIERS + MASKED, ids=[c[0] for c in
                                                                  CLASSIFIERS + MASKED])
@pytest.mark.parametrize("seed", [0, 1])
def test_task_logits_equal_transformers(tmp_path: Path, name: str, cls: Any, seed: int) -> None:
    labels = {"num_labels": 3} if "Classification" in name else {}
    folder, hf, _ = _task(tmp_path, name, seed, **labels)
    ours = cls(folder)
    assert ours.prefix == ("roberta." if name.startswith("Roberta") else "bert.")
    ids, mask = _batch(name.startswith("Roberta"), seed)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask).logits
    got = ours.logits(ids, mask)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # saved by gtdsl, loaded by transformers: the same logits
    import transformers

    back = getattr(transformers, name).from_pretrained(ours.save(tmp_path / "out")).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=ids, attention_mask=mask).logits, want)


@pytest.mark.parametrize("name,cls", CLASSIFIERS, ids=[c[0] for c in CLASSIFIERS])
def test_classify_equals_the_text_classification_pipeline(tmp_path: Path, name: str,
                                                          cls: Any) -> None:
    from transformers import pipeline

    # larger weights, so that the scores differ from text to text
    folder, hf, fast = _task(tmp_path, name, 3, id2label={0: "bad", 1: "fine", 2: "good"},
                             label2id={"bad": 0, "fine": 1, "good": 2}, initializer_range=0.6)
    texts = ["the cat sat on the mat", "a dog ran", "it was a very bad day", "good", "the the"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = pipeline("text-classification", model=hf, tokenizer=fast)(texts)
    got = cls(folder).classify(texts)
    one = cls(folder).classify(texts[0])  # a string is one text (alone: no padding, so
    assert len(one) == 1 and one[0]["label"] == got[0]["label"]  # the last bits may differ)
    assert abs(one[0]["score"] - got[0]["score"]) < 1e-6
    assert [g["label"] for g in got] == [w["label"] for w in want]
    assert all(abs(g["score"] - w["score"]) < 1e-5 for g, w in zip(got, want))
    assert len({round(g["score"], 6) for g in got}) == len(texts)  # the texts matter


@pytest.mark.parametrize("name,cls", MASKED, ids=[c[0] for c in MASKED])
def test_fill_mask_equals_the_fill_mask_pipeline(tmp_path: Path, name: str, cls: Any) -> None:
    from transformers import pipeline

    folder, hf, fast = _task(tmp_path, name, 4)
    mask = "<mask>" if name.startswith("Roberta") else "[MASK]"
    ours = cls(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fill = pipeline("fill-mask", model=hf, tokenizer=fast)
    for text in (f"the cat {mask} on the mat", f"{mask} dog", f"it was a very {mask} day"):
        want = fill(text, top_k=4)
        got = ours.fill_mask(text, top_k=4)
        assert [g["token"] for g in got] == [w["token"] for w in want]
        assert [g["token_str"] for g in got] == [w["token_str"] for w in want]
        assert [g["sequence"] for g in got] == [w["sequence"] for w in want]
        assert all(abs(g["score"] - w["score"]) < 1e-5 for g, w in zip(got, want))
    with pytest.raises(GtdslError, match="exactly one") as err:
        ours.fill_mask("the cat sat")
    assert err.value.diagnostic.code == "GT3001"


@pytest.mark.parametrize("pad", [0, None])
def test_gpt2_classification_equals_transformers(tmp_path: Path, pad: int | None) -> None:
    """The score at each row's last token that is not the pad token (left or right
    padding), with transformers' positions 0 .. s-1."""
    from transformers import GPT2Config
    from transformers import GPT2ForSequenceClassification as HF

    torch.manual_seed(2)
    hf = HF(GPT2Config(vocab_size=40, n_positions=32, n_embd=16, n_layer=2, n_head=2,
                       num_labels=3, pad_token_id=pad, bos_token_id=0, eos_token_id=0)).eval()
    folder = tmp_path / "cls"
    hf.save_pretrained(folder)
    ours = GPT2ForSequenceClassification(folder)
    g = torch.Generator().manual_seed(2)
    rows = 3 if pad is not None else 1
    ids = torch.randint(3, 40, (rows, 7), generator=g)
    mask = torch.ones_like(ids)
    if pad is not None:
        ids[1, 5:], mask[1, 5:] = 0, 0  # right padding
        ids[2, :3], mask[2, :3] = 0, 0  # left padding
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(ours.logits(ids, mask), want, rtol=1e-5, atol=1e-5)
    back = HF.from_pretrained(ours.save(tmp_path / "out")).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=ids, attention_mask=mask).logits, want)
    if pad is None:
        with pytest.raises(GtdslError, match="pad_token_id") as err:
            ours.logits(ids.repeat(2, 1))
        assert err.value.diagnostic.code == "GT3001"
    with pytest.raises(GtdslError, match="classifies"):
        ours.generate(ids, 2)
    with pytest.raises(GtdslError, match="`position_ids`") as err:
        ours.logits(ids, position_ids=torch.zeros(rows, 2, dtype=torch.int64))
    assert err.value.diagnostic.code == "GT3001"
    # the base model loads the folder (the head kept and saved back)
    base = GPT2(folder)
    assert set(base.head_tensors) == {"score.weight"}
    assert "score.weight" in read_safetensors(base.save(tmp_path / "base") / "model.safetensors")


@pytest.mark.parametrize("name,base_cls", [("BertForSequenceClassification", B.Bert),
                                           ("RobertaForMaskedLM", B.Roberta)])
def test_the_base_model_reads_a_task_folder(tmp_path: Path, name: str, base_cls: Any) -> None:
    """A task folder's encoder keys (``bert.``, ``roberta.``) are read by the base model,
    whose hidden states equal transformers' base model's; ``save`` keeps the head."""
    import transformers

    folder, hf, _ = _task(tmp_path, name, 5, **({"num_labels": 2} if "Class" in name else {}))
    ours = base_cls(folder)
    ids, mask = _batch(name.startswith("Roberta"), 5)
    encoder = hf.bert if name.startswith("Bert") else hf.roberta
    with torch.no_grad():
        want = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours.hidden_states(ids, mask=mask)
    torch.testing.assert_close(got * mask[..., None], want * mask[..., None], rtol=1e-5,
                               atol=1e-5)
    out = ours.save(tmp_path / "out")
    back = getattr(transformers, name).from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=ids, attention_mask=mask).logits,
                                   hf(input_ids=ids, attention_mask=mask).logits)


# ------------------------------------------------------------------ bad folders and inputs
def test_bad_heads_are_located_diagnostics(tmp_path: Path) -> None:
    folder, _, _ = _task(tmp_path, "BertForSequenceClassification", 6, num_labels=3)
    config = json.loads((folder / "config.json").read_text())
    # a head of 3 rows, a config of 2 labels: the key and both shapes
    (folder / "config.json").write_text(json.dumps(
        {**config, "id2label": {"0": "a", "1": "b"}, "label2id": {"a": 0, "b": 1}}))
    with pytest.raises(ModelLoadError, match="classifier.weight") as err:
        B.BertForSequenceClassification(folder)
    assert err.value.diagnostic.code == "GT0909"
    for bad, key in (({"0": "a", "2": "b"}, "id2label"), ([1, 2], "id2label"),
                     ({"0": 1, "1": 2}, "id2label")):
        (folder / "config.json").write_text(json.dumps({**config, key: bad}))
        with pytest.raises(ModelLoadError, match=key):
            B.BertForSequenceClassification(folder)
    (folder / "config.json").write_text(json.dumps(config))
    tensors = read_safetensors(folder / "model.safetensors")
    del tensors["classifier.bias"]
    write_safetensors(folder / "model.safetensors", tensors)
    with pytest.raises(ModelLoadError, match="classifier.bias"):
        B.BertForSequenceClassification(folder)


def test_an_untied_masked_lm_decoder_is_refused(tmp_path: Path) -> None:
    folder, _, _ = _task(tmp_path, "BertForMaskedLM", 7)
    tensors = read_safetensors(folder / "model.safetensors")
    tensors["cls.predictions.decoder.weight"] = torch.randn(21, 16)
    write_safetensors(folder / "model.safetensors", tensors)
    with pytest.raises(ModelLoadError, match="cls.predictions.decoder.weight") as err:
        B.BertForMaskedLM(folder)
    assert err.value.diagnostic.code == "GT0909"


def test_task_inputs_are_checked(tmp_path: Path) -> None:
    folder, _, _ = _task(tmp_path, "BertForSequenceClassification", 8)
    ours = B.BertForSequenceClassification(folder)
    for call, fragment in (
            (lambda: ours.logits(torch.zeros(1, 30, dtype=torch.int64)), "24 positions"),
            (lambda: ours.logits(torch.tensor([[1, 99]])), "[0, 21)"),
            (lambda: ours.logits(torch.tensor([[1, 2]]), torch.tensor([[1, 2]])), "0 (padding)"),
            (lambda: ours.logits(torch.tensor([[1, 2]]), None, torch.tensor([[0, 5]])),
             "token_type_ids")):
        with pytest.raises(GtdslError) as err:
            call()
        assert err.value.diagnostic.code == "GT3001" and fragment in str(err.value)
