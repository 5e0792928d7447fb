
import pytest

from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.text import TextConfig, Tokenizer, VocabConfig, Vocabulary, normalize_text, prepare_text


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer(TextConfig())


def test_normalize_text():
    config = TextConfig()
    assert normalize_text("  HELLO\tWorld\u200b ！ ", config) == "hello world !"
    assert normalize_text("ﬁne café", config) == "fine café"  # NFKC folds the ligature
    assert normalize_text("Keep Case", TextConfig(lowercase=False)) == "Keep Case"


def test_tokenize_is_spacy_rules_without_whitespace_tokens(tokenizer):
    import spacy

    text = "don't  stop, Mr. Smith's dog!"
    assert tokenizer.tokenize(text) == [t.text for t in spacy.blank("en").tokenizer(text) if not t.is_space]
    assert tokenizer.tokenize("don't stop, smith's dog!") == ["do", "n't", "stop", ",", "smith", "'s", "dog", "!"]


def test_prepare_text_rejects_empty(tokenizer):
    with pytest.raises(Rejected) as err:
        prepare_text("\u200b \t", TextConfig(), tokenizer)
    assert err.value.reason == "text_empty"


def test_vocabulary_build_order_limits_and_specials():
    counts = [("the", 5), ("a", 5), ("cat", 2), ("zebra", 1), ("<unk>", 9)]
    vocab = Vocabulary.build(counts, VocabConfig(min_freq=2))
    assert vocab.tokens == ("<pad>", "<unk>", "a", "the", "cat")  # count desc, then token asc
    assert vocab.encode(["the", "zebra", "cat"]) == [3, Vocabulary.OOV_ID, 4]
    capped = Vocabulary.build(counts, VocabConfig(max_size=3))
    assert capped.tokens == ("<pad>", "<unk>", "a")


def test_vocabulary_json_round_trip():
    vocab = Vocabulary.build([("b", 2), ("a", 1)], VocabConfig(), source_splits=["train-clean-100"])
    again = Vocabulary.from_json(vocab.to_json())
    assert again == vocab and again.source_splits == ("train-clean-100",)
    with pytest.raises(ValueError):
        Vocabulary.from_json('{"tokens": []}')


def test_lemmatize_without_lookup_tables_fails_loudly():
    pytest.importorskip("spacy")
    try:
        import spacy_lookups_data  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="spacy-lookups-data"):
            Tokenizer(TextConfig(lemmatize=True))
    else:
        assert Tokenizer(TextConfig(lemmatize=True)).lemmas("the cats were running") == ["the", "cat", "be", "run"]


def test_thread_tokenizer_is_built_once_per_thread_and_configuration():
    import threading

    from mmfeat.extractors.text import thread_tokenizer

    first = thread_tokenizer(TextConfig())
    assert thread_tokenizer(TextConfig()) is first  # equal configs share it
    assert thread_tokenizer(TextConfig(lowercase=False)) is not first
    other = []
    worker = threading.Thread(target=lambda: other.append(thread_tokenizer(TextConfig())))
    worker.start()
    worker.join()
    assert other[0] is not first and other[0].tokenize("don't stop") == first.tokenize("don't stop")
