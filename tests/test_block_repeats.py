"""`decode.block_repeats`: no n-gram (1 <= n <= N target pieces) repeated back to back, in every strategy.

Exact expectations on the Markov-chain toy of tests/test_decoding.py, a plain-Python constrained beam search as
reference (the repeat rule written independently of the implementation's history indexing), the check of
`seq2seq.repetition.repeats_back_to_back` on every returned hypothesis, `tf.function` / SavedModel runs with a
dynamic batch, and `decode_batch` on an untrained tiny model (alone, with `block_unk`, as an ensemble).
"""

import dataclasses
import math
import random

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_decoding import (
    BOS,
    EOS,
    MEMORY,
    NEG_INF,
    PAD,
    UNK,
    VOCAB,
    ToyDecoder,
    eos_bias,
    make_inputs,
    make_step,
    random_table,
    reference_beam_search,
    table_from_probs,
    trimmed,
    zero_bias,
)

from seq2seq.cli import _decode_overrides, _parser, main
from seq2seq.config import DecodeConfig, config_from_dict
from seq2seq.decoding import (
    beam_search_decode,
    block_repeated_ngrams,
    decode_batch,
    greedy_decode,
    sample_decode,
)
from seq2seq.errors import ConfigError
from seq2seq.model.ensemble import EnsembleModel
from seq2seq.model.seq2seq import build_model
from seq2seq.repetition import repeats_back_to_back

A, B = 4, 5
# Greedy without the constraint: 4 4 4 ...; with N = 1: 4 5 4 5 ...; with N = 2: 4 5 4 EOS (both content pieces
# are then blocked, EOS, the least likely, is all that is left).
CHAIN = table_from_probs(
    {
        BOS: {A: 0.9, B: 0.05, EOS: 0.05},
        A: {A: 0.6, B: 0.3, EOS: 0.1},
        B: {A: 0.5, B: 0.3, EOS: 0.2},
    }
)


# ------------------------------------------------------------------------------------------
# Pure-Python reference
# ------------------------------------------------------------------------------------------


def has_repeat(tokens, max_n):
    return repeats_back_to_back([str(t) for t in tokens if t != EOS], max_n)


def banned(tokens, max_n):
    """Tokens x for which `tokens + [x]` ends with an n-gram right after an identical copy (n <= max_n)."""
    out = set()
    for x in range(VOCAB):
        seq = list(tokens) + [x]
        if x != EOS and any(len(seq) >= 2 * n and seq[-2 * n : -n] == seq[-n:] for n in range(1, max_n + 1)):
            out.add(x)
    return out


def constrained_row(table, bias, tokens, history, max_n, drift=None):
    """(log-probs of the masked toy step after `tokens`, new history) in float64."""
    drift = drift or [0.0] * VOCAB
    prev = tokens[-1] if tokens else BOS
    history = 0.5 * history + prev
    logits = [a + b + d * history for a, b, d in zip(table[prev], bias, drift)]
    for x in banned(tokens, max_n) if max_n else ():
        logits[x] = -1e9
    top = max(logits)
    norm = top + math.log(sum(math.exp(x - top) for x in logits if x != NEG_INF))
    return [x - norm for x in logits], history


def reference_greedy(table, bias, max_length, max_n, drift=None):
    tokens, history = [], 0.0
    while len(tokens) < max_length and (not tokens or tokens[-1] != EOS):
        row, history = constrained_row(table, bias, tokens, history, max_n, drift)
        tokens.append(max(range(VOCAB), key=lambda v: (row[v], -v)))
    return tuple(tokens)


def reference_beam(table, bias, beam_size, max_length, alpha, n_best, max_n, drift=None):
    """The documented beam search (tests/test_decoding.py's reference) over the masked step."""
    return reference_beam_search(
        table,
        bias,
        beam_size,
        max_length,
        alpha,
        n_best,
        row_fn=lambda tokens, history: constrained_row(table, bias, tokens, history, max_n, drift),
    )


def blocked_decoder(table, max_n, biases, drifts=None):
    """(step, state, constants) of the toy with the constraint (or without it for max_n = 0)."""
    state, constants = make_inputs(biases, drifts)
    step = make_step(table)
    if max_n:
        step, wrap = block_repeated_ngrams(step, max_n)
        state = wrap(state, len(biases))
    return step, state, constants


# ------------------------------------------------------------------------------------------
# Toy chain: exact outputs
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "max_n,expected",
    [(0, (A,) * 8), (1, (A, B) * 4), (2, (A, B, A, EOS)), (3, (A, B, A, EOS))],
)
def test_greedy_on_the_chain_gives_the_known_alternative(max_n, expected):
    step, state, constants = blocked_decoder(CHAIN, max_n, zero_bias())
    result = greedy_decode(step, state, constants, batch_size=1, max_length=8)
    tokens = trimmed(result.ids[0], result.lengths[0])
    assert tokens == expected == reference_greedy(CHAIN, [0.0] * VOCAB, 8, max_n)
    assert has_repeat(tokens, 1) == (max_n == 0)
    assert not has_repeat(tokens, max_n or 1) or max_n == 0
    if max_n == 2:  # 0.9 * (0.3 / 0.4) * (0.5 / 0.7) * 1: the masked pieces renormalised away
        assert result.scores[0].numpy() == pytest.approx(math.log(0.9 * 0.75 * 0.5 / 0.7), abs=1e-5)


@pytest.mark.parametrize(
    "max_n,expected",
    [
        (0, [(A,) * 8, (A,) * 7 + (B,), (A, EOS)]),  # then ties: 4 4 4 5 4 4 4 4, 4 4 4 4 5 4 4 4, ...
        (1, [(A, B) * 4, (A, B, EOS), (A, EOS), (A, B, A, B, EOS)]),
        (2, [(A, B, A, EOS), (A, B, EOS), (A, EOS), (B, A, B, EOS)]),
    ],
)
def test_beam_on_the_chain_keeps_every_hypothesis_free_of_repeats(max_n, expected):
    step, state, constants = blocked_decoder(CHAIN, max_n, zero_bias())
    result = beam_search_decode(step, state, constants, 1, beam_size=4, max_length=8, length_penalty=1.0, n_best=4)
    hyps = [trimmed(result.ids[0, k], result.lengths[0, k]) for k in range(len(expected))]
    reference = reference_beam(CHAIN, [0.0] * VOCAB, 4, 8, 1.0, 4, max_n)[: len(expected)]
    assert hyps == expected == [tokens for _, _, tokens in reference]
    np.testing.assert_allclose(result.log_probs[0, : len(expected)].numpy(), [e[1] for e in reference], rtol=1e-5)
    if max_n:
        assert not any(has_repeat(h, max_n) for h in hyps)
    else:
        assert has_repeat(hyps[0], 1) and has_repeat(hyps[1], 1)


@pytest.mark.parametrize("max_n,beam_size,alpha", [(1, 3, 0.0), (2, 2, 1.0), (2, 4, 0.6), (3, 3, 0.6)])
def test_greedy_and_beam_match_the_constrained_reference(max_n, beam_size, alpha):
    """Random chains with an order-sensitive state (beams need their own state and their own history)."""
    for seed in range(4):
        table = random_table(200 + seed, eos_shift=-1.0, content=(UNK, A, B))
        rng = random.Random(seed)
        drift = [rng.uniform(-0.3, 0.3) for _ in range(VOCAB)]
        bias = [0.0] * VOCAB
        step, state, constants = blocked_decoder(table, max_n, [bias], [drift])
        greedy = greedy_decode(step, state, constants, batch_size=1, max_length=9)
        tokens = trimmed(greedy.ids[0], greedy.lengths[0])
        assert tokens == reference_greedy(table, bias, 9, max_n, drift)
        assert not has_repeat(tokens, max_n)

        expected = reference_beam(table, bias, beam_size, 9, alpha, beam_size, max_n, drift)
        assert min(np.abs(np.diff([e[0] for e in expected]))) > 1e-5  # no ties
        result = beam_search_decode(
            step, state, constants, 1, beam_size=beam_size, max_length=9, length_penalty=alpha, n_best=beam_size
        )
        for rank, (score, log_prob, hyp) in enumerate(expected):
            assert trimmed(result.ids[0, rank], result.lengths[0, rank]) == hyp
            assert result.scores[0, rank].numpy() == pytest.approx(score, rel=1e-5)
            assert result.log_probs[0, rank].numpy() == pytest.approx(log_prob, rel=1e-5)
            assert not has_repeat(hyp, max_n)


def test_sampling_never_repeats_back_to_back():
    table = random_table(31, eos_shift=-2.0, content=(UNK, A, B))
    step, state, constants = blocked_decoder(table, 2, zero_bias(32))
    result = sample_decode(step, state, constants, batch_size=32, max_length=12, temperature=2.0, seed=4)
    outputs = [trimmed(result.ids[b], result.lengths[b]) for b in range(32)]
    assert not any(has_repeat(tokens, 2) for tokens in outputs)
    assert max(len(tokens) for tokens in outputs) > 4  # long enough for repeats to have been possible


# ------------------------------------------------------------------------------------------
# The step itself
# ------------------------------------------------------------------------------------------


def test_step_masks_only_the_completing_tokens_never_eos():
    inner = make_step(random_table(3))
    step, wrap = block_repeated_ngrams(inner, 2)
    state, constants = make_inputs(zero_bias(4))
    inner_state = state
    _, history = wrap(state, 4)
    assert history.dtype == tf.int32 and history.shape == (4, 3) and np.all(history.numpy() == -1)
    # Rows: "4 5" + 4 -> 4 (n = 1) and 5 (n = 2) blocked; "5 5" + BOS -> nothing; "- 4" + 5 -> 5;
    # "EOS PAD" + PAD -> nothing (specials are never content).
    history = tf.constant([[-1, A, B], [-1, B, B], [-1, -1, A], [-1, EOS, PAD]], tf.int32)
    ids = tf.constant([A, BOS, B, PAD], tf.int32)
    logits, (new_inner, new_history), attention = step(ids, (inner_state, history), constants)
    plain_logits, plain_inner, plain_attention = inner(ids, inner_state, constants)
    np.testing.assert_array_equal(new_history.numpy(), [[A, B, A], [B, B, -1], [-1, A, B], [EOS, PAD, -1]])
    blocked = logits.numpy() == np.float32(-1e9)
    expected = np.zeros([4, VOCAB], bool)
    expected[0, [A, B]] = True
    expected[2, B] = True
    np.testing.assert_array_equal(blocked, expected)
    np.testing.assert_array_equal(logits.numpy()[~blocked], plain_logits.numpy()[~blocked])
    assert not blocked[:, EOS].any()
    tf.nest.map_structure(np.testing.assert_array_equal, new_inner, plain_inner)
    np.testing.assert_array_equal(attention.numpy(), plain_attention.numpy())


def test_eos_stays_available_when_every_piece_would_repeat():
    # After "4" only 4 and EOS have mass, and 4 is by far the likelier: N = 1 must still end the output.
    table = table_from_probs({BOS: {A: 1.0}, A: {A: 0.999, EOS: 0.001}})
    step, state, constants = blocked_decoder(table, 1, zero_bias())
    greedy = greedy_decode(step, state, constants, batch_size=1, max_length=6)
    assert trimmed(greedy.ids[0], greedy.lengths[0]) == (A, EOS)
    beam = beam_search_decode(step, state, constants, 1, beam_size=2, max_length=6, n_best=1)
    assert trimmed(beam.ids[0, 0], beam.lengths[0, 0]) == (A, EOS)


def test_bad_max_n_is_refused():
    for value in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_n"):
            block_repeated_ngrams(make_step(CHAIN), value)


# ------------------------------------------------------------------------------------------
# Graph mode and SavedModel
# ------------------------------------------------------------------------------------------


class BlockedToy(ToyDecoder):
    """tests/test_decoding.py's exported toy, decoding with the constraint."""

    def __init__(self, table, max_n):
        super().__init__(table)
        self.max_n = max_n

    @tf.function(input_signature=[tf.TensorSpec([None, VOCAB], tf.float32), tf.TensorSpec([None], tf.int32)])
    def decode(self, bias, max_length):
        return run_toy(self._step, self.max_n, bias, max_length)


def run_toy(inner_step, max_n, bias, max_length):
    batch = tf.shape(bias)[0]
    step, wrap = block_repeated_ngrams(inner_step, max_n)
    state = wrap({"counter": tf.zeros([batch, 1])}, batch)
    constants = {"bias": bias, "memory": tf.zeros([batch, MEMORY])}
    greedy = greedy_decode(step, state, constants, batch, max_length)
    sampled = sample_decode(step, state, constants, batch, max_length, temperature=1.5, seed=7)
    beam = beam_search_decode(step, state, constants, batch, 3, max_length, length_penalty=0.6, n_best=3)
    return {"greedy": greedy.ids, "sampled": sampled.ids, "beam": beam.ids, "beam_scores": beam.scores}


def test_in_tf_function_with_a_dynamic_batch_and_in_a_saved_model(tmp_path):
    table = random_table(40, eos_shift=-1.5, content=(UNK, A, B))
    module = BlockedToy(table, 2)
    inputs = [(eos_bias([0.5, -2.0]), [6, 9]), (eos_bias([-1.0, 0.0, -3.0]), [9, 4, 8])]
    traced = [module.decode(tf.constant(b), tf.constant(m)) for b, m in inputs]
    assert module.decode.experimental_get_tracing_count() == 1
    tf.saved_model.save(module, str(tmp_path / "toy"))
    restored = tf.saved_model.load(str(tmp_path / "toy"))
    for (biases, limits), from_function in zip(inputs, traced):
        eager = run_toy(module._step, 2, tf.constant(biases), tf.constant(limits))
        from_saved = restored.decode(tf.constant(biases), tf.constant(limits))
        for key, value in eager.items():
            np.testing.assert_allclose(from_function[key].numpy(), value.numpy(), rtol=1e-6)
            np.testing.assert_allclose(from_saved[key].numpy(), value.numpy(), rtol=1e-6)
        beam = eager["beam"].numpy()
        for ids in [*eager["greedy"].numpy(), *eager["sampled"].numpy(), *beam.reshape(-1, beam.shape[-1])]:
            assert not has_repeat([t for t in ids.tolist() if t != PAD], 2)


# ------------------------------------------------------------------------------------------
# decode_batch on a real (untrained, tiny) model; config and command line
# ------------------------------------------------------------------------------------------


class ToyModel:
    """`encode` / `step` of the toy chain, for `decode_batch`."""

    def __init__(self, table, biases):
        self.step = make_step(table)
        self.biases = biases

    def encode(self, source, training=False):
        return make_inputs(self.biases)


@pytest.mark.parametrize("strategy", ["beam", "greedy"])
def test_zero_decodes_exactly_as_without_the_option(strategy):
    table = random_table(50, content=(A, B))
    model = ToyModel(table, eos_bias([0.0, -1.0]))
    decode = DecodeConfig(strategy=strategy, beam_size=3, n_best=3 if strategy == "beam" else 1, max_length_ratio=None)
    assert decode.block_repeats == 0
    got = decode_batch(model, None, None, decode)
    state, constants = make_inputs(model.biases)
    if strategy == "beam":
        plain = beam_search_decode(model.step, state, constants, 2, 3, 60, length_penalty=0.6, n_best=3)
    else:
        plain = greedy_decode(model.step, state, constants, 2, 60)
    np.testing.assert_array_equal(got.ids.numpy().reshape(plain.ids.shape), plain.ids.numpy())
    np.testing.assert_array_equal(got.scores.numpy().reshape(plain.scores.shape), plain.scores.numpy())


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(3)
    config = config_from_dict(
        {
            "data": {"path": "unused.tsv"},
            "model": {"embedding": {"dim": 8}, "encoder": {"units": 8}, "decoder": {"units": 8}},
        }
    )
    return build_model(config, 20, 20)


def test_decode_batch_with_a_real_model_alone_with_block_unk_and_as_an_ensemble(tiny_model):
    source = tf.constant([[5, 6, 7, 8, 3], [9, 5, 3, 0, 0], [7, 7, 7, 7, 3]], tf.int32)
    lengths = tf.constant([5, 3, 5], tf.int32)
    base = DecodeConfig(beam_size=3, n_best=3, max_length=14, max_length_ratio=None)
    plain = decode_batch(tiny_model, source, lengths, base)
    ids = plain.ids.numpy()
    plain_hyps = [trimmed(ids[b, k], plain.lengths[b, k]) for b in range(3) for k in range(3)]
    assert any(has_repeat(h, 2) for h in plain_hyps)  # an untrained decoder repeats itself
    for block_unk in (False, True):
        decode = dataclasses.replace(base, block_repeats=2, block_unk=block_unk)
        result = decode_batch(tiny_model, source, lengths, decode)
        ids = result.ids.numpy()
        hyps = [trimmed(ids[b, k], result.lengths[b, k]) for b in range(3) for k in range(3)]
        assert not any(has_repeat(h, 2) for h in hyps)
        assert np.isfinite(result.scores.numpy()).all() and result.scores.numpy().min() > -1e6
        if block_unk:
            assert not np.any(ids == UNK)
    ensemble = decode_batch(EnsembleModel([tiny_model, tiny_model]), source, lengths, decode)
    np.testing.assert_array_equal(ensemble.ids.numpy(), result.ids.numpy())

    greedy = dataclasses.replace(decode, strategy="greedy", n_best=1)
    eager = decode_batch(tiny_model, source, lengths, greedy)
    graph = tf.function(
        lambda s, n: decode_batch(tiny_model, s, n, greedy).ids,
        input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)],
    )
    np.testing.assert_array_equal(graph(source, lengths).numpy(), eager.ids.numpy())
    one = decode_batch(tiny_model, source[:1], lengths[:1], greedy)
    np.testing.assert_array_equal(graph(source[:1], lengths[:1]).numpy(), one.ids.numpy())
    assert graph.experimental_get_tracing_count() == 1


def test_config_field_is_validated_by_name():
    base = {"data": {"path": "unused.tsv"}}
    assert config_from_dict(base).decode.block_repeats == 0
    assert config_from_dict(base, ["decode.block_repeats=3"]).decode.block_repeats == 3
    with pytest.raises(ConfigError, match=r"decode\.block_repeats: got -1; must be 0\.\.16"):
        config_from_dict(base, ["decode.block_repeats=-1"])
    with pytest.raises(ConfigError, match=r"decode\.block_repeats"):
        config_from_dict(base, ["decode.block_repeats=true"])


def test_command_line_flag(capsys):
    for command in (
        ["evaluate", "--model-dir", "m"],
        ["translate", "--model-dir", "m", "x"],
        ["export", "--model-dir", "m"],
    ):
        args = _parser().parse_args(command + ["--block-repeats", "2"])
        assert _decode_overrides(args)["block_repeats"] == 2
        assert _decode_overrides(_parser().parse_args(command))["block_repeats"] is None
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--model-dir", "m", "--block-repeats", "-1", "x"])
    assert exit_info.value.code == 2
    assert "--block-repeats" in capsys.readouterr().err
    assert main(["translate", "--saved-model", "e", "--block-repeats", "2", "x"]) == 2
    assert "need --model-dir" in capsys.readouterr().err
