import random

from mmfeat.extractors.dedupe import Fingerprint, find_duplicates


def fp(split, sid, sha, phash=None):
    return Fingerprint(split, sid, sha, phash)


def test_exact_duplicates_keep_the_lowest_id_in_any_input_order():
    prints = [fp("train", "003", "a"), fp("train", "001", "a"), fp("train", "002", "b"), fp("train", "004", "a")]
    for _ in range(3):
        random.shuffle(prints)
        report = find_duplicates(prints, near_distance=None)
        assert [(m.sample_id, m.of_sample_id, m.kind) for m in report.dropped] == [
            ("003", "001", "exact"),
            ("004", "001", "exact"),
        ]
        assert report.leakage == ()


def test_near_duplicates_within_the_distance_only():
    base = 0x0123_4567_89AB_CDEF
    prints = [
        fp("train", "a", "1", base),
        fp("train", "b", "2", base ^ 0b1011),  # 3 bits away
        fp("train", "c", "3", base ^ (0xFF << 40)),  # 8 bits away
    ]
    report = find_duplicates(prints, near_distance=4)
    assert [(m.sample_id, m.of_sample_id, m.kind, m.distance) for m in report.dropped] == [("b", "a", "near", 3)]
    assert find_duplicates(prints, near_distance=0).dropped == ()


def test_near_pairs_are_found_whichever_bits_differ():
    rng = random.Random(0)
    for _ in range(200):
        base = rng.getrandbits(64)
        flipped = base
        for bit in rng.sample(range(64), 4):
            flipped ^= 1 << bit
        report = find_duplicates([fp("s", "x", "1", base), fp("s", "y", "2", flipped)], near_distance=4)
        assert len(report.dropped) == 1


def test_same_image_across_splits_is_leakage_not_a_drop():
    prints = [fp("train", "001", "a", 5), fp("train", "002", "a", 5), fp("val", "900", "a", 5), fp("val", "901", "z", 2**63)]
    report = find_duplicates(prints, near_distance=2)
    assert [(m.sample_id, m.of_sample_id) for m in report.dropped] == [("002", "001")]
    assert [(m.split, m.sample_id, m.of_split, m.of_sample_id) for m in report.leakage] == [("val", "900", "train", "001")]
