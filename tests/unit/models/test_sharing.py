"""``save`` writes folders as the Hub shares them: every loaded tensor, the config, the
tokenizer files, ``generation_config.json`` for a generative model, a model card, and the
sentence-transformers layout for sentence embeddings. The oracles are the libraries users
load the folders with: ``SentenceTransformer`` and ``AutoModel`` agree with gtdsl on the saved
folder, and transformers decodes a saved GPT-2 and T5 as gtdsl does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gtdsl.models.bert import Bert
from gtdsl.models.gpt2 import GPT2
from gtdsl.models.t5 import T5
from gtdsl.models.weights import ModelLoadError
from gtdsl.runtime.tensorfile import read_safetensors

TEXTS = ["A man is eating food.", "The new movie is awesome!", "gtdsl checks shapes",
         "Ein kurzer Satz auf Deutsch."]


def _front_matter(card: str) -> dict[str, object]:
    """The model card's YAML front matter (``key: value`` lines and ``- item`` lists)."""
    head = card.split("---\n")[1]
    out: dict[str, object] = {}
    key = ""
    for line in head.splitlines():
        if line.startswith("- "):
            out.setdefault(key, [])
            out[key].append(line[2:])  # type: ignore[union-attr]
        else:
            key, _, value = line.partition(":")
            if value.strip():
                out[key] = value.strip()
    return out


def test_a_sentence_embedding_folder_round_trips_through_sentence_transformers(
        tmp_path: Path) -> None:
    """MiniLM (real weights) saved by gtdsl: sentence-transformers and transformers load the
    folder, and all three give the embeddings of the original model."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    ours = Bert("all-MiniLM-L6-v2")
    out = ours.save(tmp_path / "minilm")
    for name in ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json",
                 "tokenizer.json", "config.json", "model.safetensors", "README.md"):
        assert (out / name).is_file(), name
    assert (out / "2_Normalize").is_dir()
    # every loaded tensor, the pooler included
    source = read_safetensors(ours.dir / "model.safetensors")
    saved = read_safetensors(out / "model.safetensors")
    assert set(saved) == set(source) and any(k.startswith("pooler.") for k in saved)
    assert all(torch.equal(saved[k], source[k]) for k in source)
    want = ours.encode(TEXTS)
    st = SentenceTransformer(str(out), device="cpu").encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(st, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(Bert(out).encode(TEXTS), want, rtol=0, atol=0)
    original = SentenceTransformer(str(ours.dir), device="cpu").encode(TEXTS,
                                                                      convert_to_tensor=True)
    torch.testing.assert_close(st, original, rtol=1e-6, atol=1e-6)
    hf = AutoModel.from_pretrained(out).eval()
    t = ours.tokenize(TEXTS)
    with torch.no_grad():
        h = hf(input_ids=t["ids"], attention_mask=t["mask"].long()).last_hidden_state
    m = t["mask"][..., None]
    torch.testing.assert_close(h * m, ours.hidden_states(t["ids"], t["types"], t["mask"]) * m,
                               rtol=1e-5, atol=1e-5)
    card = (out / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "sentence-transformers"
    assert meta["pipeline_tag"] == "sentence-similarity"
    assert "gtdsl" in meta["tags"]  # type: ignore[operator]
    assert "| layers | 6 |" in card and "| hidden size | 384 |" in card
    assert f"{sum(v.numel() for v in saved.values()):,}" in card
    assert "gtdsl.models.bert.Bert.save" in card and "SentenceTransformer(" in card


def test_a_plain_encoder_gets_no_sentence_layout(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    hf = BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=20,
                              max_position_embeddings=16)).eval()
    hf.save_pretrained(tmp_path / "src")
    out = Bert(tmp_path / "src").save(tmp_path / "out")
    assert not (out / "modules.json").exists()
    assert _front_matter((out / "README.md").read_text())["pipeline_tag"] == \
        "feature-extraction"
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertModel"]
    assert not list(out.glob(".tmp-*"))  # nothing half-written left behind


def test_a_task_model_saved_from_a_sentence_model_is_not_one(tmp_path: Path) -> None:
    """A classifier saved from MiniLM's folder (the fine-tuning example's) keeps the
    tokenizer but not the sentence-transformers files and tags of its source."""
    from gtdsl.models.sharing import Card, save_folder

    bert = Bert("all-MiniLM-L6-v2")
    assert (bert.dir / "sentence_bert_config.json").is_file()  # the source is one
    card = Card("BertForSequenceClassification", "BERT", "text-classification", {}, "x.y",
                "...")
    out = save_folder(bert.dir, tmp_path / "clf", bert.state_dict(), bert.raw_config, card)
    names = {p.name for p in out.iterdir()}
    assert "tokenizer.json" in names
    assert not names & {"sentence_bert_config.json", "config_sentence_transformers.json",
                        "modules.json"}
    front = _front_matter((out / "README.md").read_text())
    assert front["pipeline_tag"] == "text-classification"
    assert "sentence-transformers" not in (out / "README.md").read_text().split("---")[1]


def test_a_generative_folder_gets_a_generation_config(tmp_path: Path) -> None:
    """A GPT-2 folder without ``generation_config.json`` (its settings in config.json, as
    older checkpoints keep them) saves one, and transformers decodes the saved folder as
    gtdsl decodes the original."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.unit.models.hf import save_folder

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=61, n_positions=32, n_embd=16, n_layer=2,
                                    n_head=2, bos_token_id=0, eos_token_id=3)).eval()
    src = save_folder(hf, tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "repetition_penalty": 3.0,
                                                 "no_repeat_ngram_size": 2}))
    ours = GPT2(src)
    ids = torch.tensor([[5, 6, 7, 5, 6]])
    want = ours.generate(ids, 12)
    out = ours.save(tmp_path / "out")
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["repetition_penalty"] == 3.0 and gen["eos_token_id"] == 3
    back = GPT2LMHeadModel.from_pretrained(out).eval()
    assert torch.equal(back.generate(ids, attention_mask=torch.ones_like(ids),
                                     max_new_tokens=12), want)
    assert torch.equal(GPT2(out).generate(ids, 12), want)
    assert not torch.equal(want, ours.generate(ids, 12, repetition_penalty=1.0,
                                               no_repeat_ngram_size=0))
    meta = _front_matter((out / "README.md").read_text())
    assert meta["pipeline_tag"] == "text-generation" and meta["library_name"] == "transformers"


def test_a_modern_t5_saves_for_transformers(tmp_path: Path) -> None:
    from transformers import AutoModelForSeq2SeqLM, MT5Config, MT5ForConditionalGeneration

    torch.manual_seed(3)
    cfg = MT5Config(vocab_size=40, d_model=16, d_kv=4, d_ff=24, num_layers=2, num_heads=2,
                    relative_attention_num_buckets=8, relative_attention_max_distance=20,
                    tie_word_embeddings=False, initializer_factor=4.0)
    MT5ForConditionalGeneration(cfg).save_pretrained(tmp_path / "src")
    ours = T5(tmp_path / "src")
    out = ours.save(tmp_path / "out")
    back = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    ids = torch.randint(2, 40, (2, 6), generator=torch.Generator().manual_seed(1))
    assert torch.equal(back.generate(ids, max_new_tokens=6, num_beams=2),
                       ours.beam_search(ids, 6, 2))
    card = (out / "README.md").read_text()
    assert "`MT5ForConditionalGeneration`" in card and "| feed-forward | gated gelu |" in card


def test_saving_onto_a_file_is_a_diagnostic(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=20,
                         max_position_embeddings=16)).save_pretrained(tmp_path / "src")
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(ModelLoadError, match="not a folder") as err:
        Bert(tmp_path / "src").save(target)
    assert err.value.diagnostic.code == "GT0909" and target.read_text() == "keep me"


def test_saving_replaces_what_it_writes_and_refuses_another_models_files(tmp_path: Path
                                                                         ) -> None:
    """A second save into the same folder replaces the generation settings it writes; a
    folder holding another model's loader files is refused; a folder whose files are
    symbolic links (a hub cache's snapshot) is saved with their contents; files get the
    umask's mode; the source card's licence is kept."""
    import os

    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.unit.models.hf import save_folder

    def gpt2(name: str, eos: int) -> Path:
        torch.manual_seed(0)
        hf = GPT2LMHeadModel(GPT2Config(vocab_size=61, n_positions=32, n_embd=16, n_layer=1,
                                        n_head=2, bos_token_id=0, eos_token_id=eos)).eval()
        return save_folder(hf, tmp_path / name)

    a, b = gpt2("a", 3), gpt2("b", 8)
    (a / "README.md").write_text("---\nlicense: mit\ntags:\n- demo\n---\n# A card\nText.\n")
    out = GPT2(a).save(tmp_path / "out")
    assert GPT2(out).settings()["eos_token_id"] == [3]
    GPT2(b).save(tmp_path / "out")
    assert GPT2(out).settings()["eos_token_id"] == [8]
    card = (GPT2(a).save(tmp_path / "carded") / "README.md").read_text()
    assert "license: mit" in card and "- demo" in card and "# A card" in card
    mask = os.umask(0o022)
    try:
        fresh = GPT2(a).save(tmp_path / "modes")
    finally:
        os.umask(mask)
    assert {oct(p.stat().st_mode & 0o777) for p in fresh.iterdir()} == {"0o644"}
    # another model's files in the target: refused, nothing written
    other = tmp_path / "other"
    other.mkdir()
    (other / "tokenizer.json").write_text("{}")
    (other / "modules.json").write_text("[]")
    with pytest.raises(ModelLoadError, match="modules.json") as err:
        GPT2(a).save(other)
    assert err.value.diagnostic.code == "GT0909"
    assert sorted(p.name for p in other.iterdir()) == ["modules.json", "tokenizer.json"]
    # a snapshot of links: the files they point to are saved
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    blobs, snap = tmp_path / "blobs", tmp_path / "snap"
    blobs.mkdir()
    snap.mkdir()
    from tokenizers.pre_tokenizers import Whitespace

    tok = Tokenizer(WordLevel({f"w{i}": i for i in range(61)}, unk_token="w0"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(blobs / "tok"))
    for name in ("config.json", "model.safetensors"):
        (blobs / name).write_bytes((a / name).read_bytes())
        (snap / name).symlink_to(blobs / name)
    (snap / "tokenizer.json").symlink_to(blobs / "tok")
    saved = GPT2(snap).save(tmp_path / "from-links")
    assert (saved / "tokenizer.json").is_file() and not (saved / "tokenizer.json").is_symlink()
    assert GPT2(saved).generate_text("w5 w7", 3).startswith("w5 w7")
    for bad in ("", "   ", "a\0b", None, 5):
        with pytest.raises(ModelLoadError, match="cannot save"):
            GPT2(a).save(bad)  # type: ignore[arg-type]
