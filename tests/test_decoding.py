"""Tests for seq2seq.decoding with hand-set toy step functions and exact expectations.

The toy decoder is a Markov chain: ``logits = table[prev_token] + bias[sentence]`` where the
per-sentence ``bias`` lives in ``constants``; the state is a step counter and the attention is
``one_hot(prev_token % MEMORY)``, so the expected attention of any output is known exactly.
Expected log-probabilities are recomputed in pure Python (float64) from the same table.
"""

import itertools
import math
import random

import numpy as np
import pytest
import tensorflow as tf

from seq2seq.decoding import (
    BeamResult,
    DecodeResult,
    beam_search_decode,
    gnmt_length_penalty,
    greedy_decode,
    max_output_length,
    sample_decode,
    suppress_tokens,
)

PAD, UNK, BOS, EOS = 0, 1, 2, 3
CONTENT = (4, 5)
VOCAB = 6
MEMORY = 3
NEG_INF = float("-inf")


# ------------------------------------------------------------------------------------------
# Toy model
# ------------------------------------------------------------------------------------------


def random_table(seed, eos_shift=0.0, content=CONTENT):
    """Row = previous token; PAD/UNK/BOS are never emitted (-inf); EOS and content are random."""
    rng = random.Random(seed)
    table = []
    for _ in range(VOCAB):
        row = [NEG_INF] * VOCAB
        row[EOS] = rng.uniform(-2.0, 2.0) + eos_shift
        for token in content:
            row[token] = rng.uniform(-2.0, 2.0)
        table.append(row)
    return table


def table_from_probs(rows):
    """``rows``: {prev_token: {token: prob}} -> logits table (log-probs; missing = -inf)."""
    table = [[NEG_INF] * VOCAB for _ in range(VOCAB)]
    for prev, probs in rows.items():
        for token, prob in probs.items():
            table[prev][token] = math.log(prob)
    for prev in range(VOCAB):
        if prev not in rows:
            table[prev][EOS] = 0.0
    return table


def make_step(table):
    table_t = tf.constant(table, tf.float32)

    def step(ids, state, constants):
        history = 0.5 * state["history"] + tf.cast(ids, tf.float32)[:, None]
        logits = tf.gather(table_t, ids) + constants["bias"] + constants["drift"] * history
        attention = tf.one_hot(ids % MEMORY, MEMORY) + 0.0 * constants["memory"]
        return logits, {"counter": state["counter"] + 1.0, "history": history}, attention

    return step


def make_inputs(biases, drifts=None):
    """Initial state and constants for ``len(biases)`` sentences; each bias is a [VOCAB] list.

    ``drifts`` (default zeros) makes the logits depend on the order-sensitive history
    ``h = 0.5 * h + prev_token`` kept in the state, so beams really need their own state.
    """
    batch = len(biases)
    drifts = zero_bias(batch) if drifts is None else drifts
    state = {"counter": tf.zeros([batch, 1]), "history": tf.zeros([batch, 1])}
    constants = {
        "bias": tf.constant(biases, tf.float32),
        "memory": tf.zeros([batch, MEMORY]),
        "drift": tf.constant(drifts, tf.float32),
    }
    return state, constants


def zero_bias(batch=1):
    return [[0.0] * VOCAB for _ in range(batch)]


def eos_bias(values):
    rows = zero_bias(len(values))
    for row, value in zip(rows, values):
        row[EOS] = value
    return rows


# ------------------------------------------------------------------------------------------
# Pure-Python reference
# ------------------------------------------------------------------------------------------


def log_softmax_row(row):
    top = max(row)
    norm = top + math.log(sum(math.exp(x - top) for x in row if x != NEG_INF))
    return [x - norm for x in row]


def step_log_probs(table, bias, prev, history, drift=None):
    """Reference of the toy step: returns (log_probs row, new history)."""
    drift = drift or [0.0] * VOCAB
    history = 0.5 * history + prev
    logits = [a + b + d * history for a, b, d in zip(table[prev], bias, drift)]
    return log_softmax_row(logits), history


def sequence_log_prob(table, bias, tokens, drift=None):
    total, prev, history = 0.0, BOS, 0.0
    for token in tokens:
        row, history = step_log_probs(table, bias, prev, history, drift)
        total += row[token]
        prev = token
    return total


def lp(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


def enumerate_hypotheses(table, bias, max_length, alpha):
    """All EOS-ended sequences up to max_length plus all EOS-free ones of exactly max_length."""
    found = []
    for n in range(1, max_length + 1):
        for body in itertools.product(CONTENT, repeat=n - 1):
            found.append(body + (EOS,))
    found.extend(itertools.product(CONTENT, repeat=max_length))
    scored = []
    for tokens in found:
        log_prob = sequence_log_prob(table, bias, tokens)
        scored.append((log_prob / lp(len(tokens), alpha), log_prob, tuple(tokens)))
    return sorted(scored, reverse=True)


def reference_beam_search(table, bias, beam_size, max_length, alpha, n_best, drift=None, row_fn=None):
    """Plain-Python beam search with the documented semantics (finished beams keep their slot,
    extend with PAD at zero cost and are ranked by their own-length score; every hypothesis that
    finishes inside the beam is also kept in a separate finished list).

    `row_fn(tokens, history) -> (log-probs of the next token, new history)`; default: the toy chain's step.
    """
    if row_fn is None:

        def row_fn(tokens, history):
            return step_log_probs(table, bias, tokens[-1] if tokens else BOS, history, drift)

    beams = [(0.0, (), False, 0.0)]  # (log_prob, tokens, finished, history); beam 0 only
    done = []
    for t in range(max_length):
        candidates = []
        for log_prob, tokens, finished, history in beams:
            if finished:
                score = log_prob / lp(len(tokens), alpha)
                candidates.append((score, log_prob, tokens, True, False, history))
                continue
            row, new_history = row_fn(tokens, history)
            for token, token_log_prob in enumerate(row):
                if token_log_prob != NEG_INF:
                    total = log_prob + token_log_prob
                    candidates.append(
                        (total / lp(t + 1, alpha), total, tokens + (token,), token == EOS, True, new_history)
                    )
        candidates.sort(key=lambda c: c[0], reverse=True)
        beams = []
        for score, log_prob, tokens, finished, new, history in candidates[:beam_size]:
            if new and (finished or t + 1 == max_length):
                done.append((score, log_prob, tokens))
            beams.append((log_prob, tokens, finished, history))
        if all(beam[2] for beam in beams):
            break
    return sorted(done, reverse=True)[:n_best]


def trimmed(ids, length):
    return tuple(int(x) for x in np.asarray(ids)[: int(length)])


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_size_one_equals_greedy(seed):
    table = random_table(seed)
    biases = eos_bias([1.0, -1.5, 0.0])
    step = make_step(table)
    state, constants = make_inputs(biases)
    greedy = greedy_decode(step, state, constants, batch_size=3, max_length=7)
    for alpha in (0.0, 1.0):
        beam = beam_search_decode(step, state, constants, batch_size=3, beam_size=1, max_length=7, length_penalty=alpha)
        np.testing.assert_array_equal(beam.ids[:, 0].numpy(), greedy.ids.numpy())
        np.testing.assert_array_equal(beam.lengths[:, 0].numpy(), greedy.lengths.numpy())
        np.testing.assert_array_equal(beam.log_probs[:, 0].numpy(), greedy.scores.numpy())
    np.testing.assert_array_equal(
        beam.scores[:, 0].numpy(), (greedy.scores / gnmt_length_penalty(greedy.lengths, 1.0)).numpy()
    )


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_beam_finds_exhaustive_optimum(alpha):
    table = random_table(7)
    bias = [0.0] * VOCAB
    max_length = 4
    expected = enumerate_hypotheses(table, bias, max_length, alpha)
    assert len(expected) == 31  # 1 + 2 + 4 + 8 EOS-ended, 16 cut at the limit
    n_check = 10
    gaps = [expected[i][0] - expected[i + 1][0] for i in range(n_check)]
    assert min(gaps) > 1e-4  # no near-ties, so the order is unambiguous in float32

    step = make_step(table)
    state, constants = make_inputs([bias])
    # 32 beams hold every prefix and finished hypothesis: the search is exhaustive.
    result = beam_search_decode(
        step, state, constants, batch_size=1, beam_size=32, max_length=max_length, length_penalty=alpha, n_best=32
    )
    for rank in range(n_check):
        score, log_prob, tokens = expected[rank]
        assert trimmed(result.ids[0, rank], result.lengths[0, rank]) == tokens
        assert result.scores[0, rank].numpy() == pytest.approx(score, rel=1e-5)
        assert result.log_probs[0, rank].numpy() == pytest.approx(log_prob, rel=1e-5)
    np.testing.assert_allclose(result.scores[0, :31].numpy(), [e[0] for e in expected], rtol=1e-5)
    # Only 31 hypotheses exist: the 32nd entry is padding.
    assert result.scores[0, 31].numpy() == NEG_INF
    assert result.lengths[0, 31].numpy() == 0
    assert not np.any(result.ids[0, 31].numpy())

    # A narrow beam still returns the optimum on this model.
    narrow = beam_search_decode(
        step, state, constants, batch_size=1, beam_size=4, max_length=max_length, length_penalty=alpha
    )
    assert trimmed(narrow.ids[0, 0], narrow.lengths[0, 0]) == expected[0][2]


@pytest.mark.parametrize("beam_size,alpha", [(2, 0.0), (2, 1.5), (3, 3.0)])
def test_beam_matches_python_reference(beam_size, alpha):
    for seed in range(6):
        table = random_table(100 + seed, eos_shift=0.5, content=(1, 4, 5))
        bias = [0.0] * VOCAB
        rng = random.Random(seed)
        drift = [rng.uniform(-0.3, 0.3) for _ in range(VOCAB)]
        expected = reference_beam_search(table, bias, beam_size, 6, alpha, beam_size, drift)
        scores = [e[0] for e in expected]
        assert min(np.abs(np.diff(scores))) > 1e-5  # no ties: the order is unambiguous
        state, constants = make_inputs([bias], [drift])
        result = beam_search_decode(
            make_step(table),
            state,
            constants,
            batch_size=1,
            beam_size=beam_size,
            max_length=6,
            length_penalty=alpha,
            n_best=beam_size,
        )
        for rank, (score, log_prob, tokens) in enumerate(expected):
            assert trimmed(result.ids[0, rank], result.lengths[0, rank]) == tokens
            assert result.scores[0, rank].numpy() == pytest.approx(score, rel=1e-5)
            assert result.log_probs[0, rank].numpy() == pytest.approx(log_prob, rel=1e-5)


def test_nbest_distinct_and_sorted():
    table = random_table(3, content=(1, 4, 5))
    biases = eos_bias([-1.0, 0.5])
    step = make_step(table)
    state, constants = make_inputs(biases)
    alpha = 0.8
    result = beam_search_decode(
        step, state, constants, batch_size=2, beam_size=5, max_length=6, length_penalty=alpha, n_best=5
    )
    assert isinstance(result, BeamResult)
    for b in range(2):
        hyps = [trimmed(result.ids[b, k], result.lengths[b, k]) for k in range(5)]
        assert len(set(hyps)) == 5
        scores = result.scores[b].numpy()
        assert np.all(np.diff(scores) <= 0)
        for k, tokens in enumerate(hyps):
            log_prob = sequence_log_prob(table, biases[b], tokens)
            assert result.log_probs[b, k].numpy() == pytest.approx(log_prob, rel=1e-5)
            assert scores[k] == pytest.approx(log_prob / lp(len(tokens), alpha), rel=1e-5)


def test_length_penalty_changes_ranking_as_formula():
    # P(EOS)=0.4 (short), P(a b EOS)=0.35*0.95*0.95=0.3159 (long).
    # alpha=0: log 0.4 = -0.916 > log 0.3159 = -1.152           -> short first.
    # alpha=1: -0.916 / (6/6) = -0.916 < -1.152 / (8/6) = -0.864 -> long first.
    a, b = 4, 5
    table = table_from_probs(
        {
            BOS: {EOS: 0.4, a: 0.35, b: 0.25},
            a: {b: 0.95, a: 0.025, EOS: 0.025},
            b: {EOS: 0.95, a: 0.025, b: 0.025},
        }
    )
    step = make_step(table)
    state, constants = make_inputs(zero_bias())
    short, long_ = (EOS,), (a, b, EOS)
    log_p = {short: math.log(0.4), long_: math.log(0.35 * 0.95 * 0.95)}
    for alpha, order in ((0.0, (short, long_)), (1.0, (long_, short))):
        result = beam_search_decode(
            step, state, constants, batch_size=1, beam_size=4, max_length=4, length_penalty=alpha, n_best=2
        )
        got = tuple(trimmed(result.ids[0, k], result.lengths[0, k]) for k in range(2))
        assert got == order
        for k, tokens in enumerate(order):
            expected = log_p[tokens] / (((5.0 + len(tokens)) ** alpha) / (6.0**alpha))
            assert result.scores[0, k].numpy() == pytest.approx(expected, rel=1e-6)
            assert result.log_probs[0, k].numpy() == pytest.approx(log_p[tokens], rel=1e-6)
            assert result.lengths[0, k].numpy() == len(tokens)


def test_decoding_stops_at_max_length():
    table = random_table(4)
    for row in table:
        row[EOS] = NEG_INF  # never emits EOS
    step = make_step(table)
    state, constants = make_inputs(zero_bias(2))
    greedy = greedy_decode(step, state, constants, batch_size=2, max_length=5)
    assert greedy.ids.shape == (2, 5)
    np.testing.assert_array_equal(greedy.lengths.numpy(), [5, 5])
    assert not np.any(greedy.ids.numpy() == EOS)

    beam = beam_search_decode(step, state, constants, batch_size=2, beam_size=3, max_length=5, n_best=3)
    assert beam.ids.shape == (2, 3, 5)
    np.testing.assert_array_equal(beam.lengths.numpy(), np.full([2, 3], 5))
    assert not np.any(beam.ids.numpy() == EOS)
    assert np.all(np.isfinite(beam.scores.numpy()))

    # Per-sentence limits (e.g. from a relative rule), as a tensor.
    limits = tf.constant([2, 4], tf.int32)
    greedy = greedy_decode(step, state, constants, batch_size=2, max_length=limits)
    np.testing.assert_array_equal(greedy.lengths.numpy(), [2, 4])
    assert greedy.ids.shape == (2, 4)
    np.testing.assert_array_equal(greedy.ids[0, 2:].numpy(), [PAD, PAD])
    beam = beam_search_decode(step, state, constants, batch_size=2, beam_size=2, max_length=limits, n_best=2)
    np.testing.assert_array_equal(beam.lengths.numpy(), [[2, 2], [4, 4]])
    np.testing.assert_array_equal(beam.ids[0, :, 2:].numpy(), np.zeros([2, 2]))


def test_max_output_length_rule():
    lengths = tf.constant([3, 10, 0])
    np.testing.assert_array_equal(max_output_length(lengths, 8, 1.5, 1).numpy(), [6, 8, 1])
    np.testing.assert_array_equal(max_output_length(lengths, 8).numpy(), [8, 8, 8])


@pytest.mark.parametrize("beam_size", [0, 3])
def test_batch_equals_individual(beam_size):
    table = random_table(5)
    biases = eos_bias([4.0, -6.0, 0.0])  # very short, very long (hits its limit), medium
    limits = [3, 9, 6]
    step = make_step(table)
    state, constants = make_inputs(biases)

    def run(st, const, batch, limit):
        if beam_size:
            return beam_search_decode(
                step, st, const, batch_size=batch, beam_size=beam_size, max_length=limit, length_penalty=0.7, n_best=2
            )
        return greedy_decode(step, st, const, batch_size=batch, max_length=limit)

    together = run(state, constants, 3, tf.constant(limits))
    for i in range(3):
        alone = run(*make_inputs([biases[i]]), 1, limits[i])
        np.testing.assert_array_equal(alone.lengths[0].numpy(), together.lengths[i].numpy())
        np.testing.assert_allclose(alone.scores[0].numpy(), together.scores[i].numpy(), rtol=1e-6)
        time = alone.ids.shape[-1]
        np.testing.assert_array_equal(alone.ids[0].numpy(), together.ids[i, ..., :time].numpy())
        assert not np.any(together.ids[i, ..., time:].numpy())
    lengths = together.lengths.numpy().reshape(3, -1)
    assert lengths[0].max() < 3 and lengths[1].min() == 9


def test_finished_beams_stay_finished():
    # After EOS (and PAD) the toy strongly prefers token 4: a decoder that kept extending a
    # finished hypothesis would show it.
    table = random_table(6, eos_shift=1.0)
    table[EOS] = [NEG_INF] * VOCAB
    table[EOS][4] = 10.0
    table[EOS][EOS] = 0.0
    table[PAD] = list(table[EOS])
    step = make_step(table)
    biases = eos_bias([0.0, -1.0])
    state, constants = make_inputs(biases)
    greedy = greedy_decode(step, state, constants, batch_size=2, max_length=8)
    sampled = sample_decode(step, state, constants, batch_size=2, max_length=8, seed=3)
    beam = beam_search_decode(step, state, constants, batch_size=2, beam_size=4, max_length=8, n_best=4)
    rows = [(b, greedy.ids[b], greedy.lengths[b], greedy.scores[b]) for b in range(2)]
    rows += [(b, sampled.ids[b], sampled.lengths[b], sampled.scores[b]) for b in range(2)]
    rows += [(b, beam.ids[b, k], beam.lengths[b, k], beam.log_probs[b, k]) for b in range(2) for k in range(4)]
    for b, ids, length, score in rows:
        ids, length = ids.numpy(), int(length)
        eos_positions = np.flatnonzero(ids == EOS)
        if eos_positions.size:
            assert length == eos_positions[0] + 1
        assert np.all(ids[length:] == PAD)
        assert np.all(ids[:length] != PAD)
        expected = sequence_log_prob(table, biases[b], trimmed(ids, length))
        assert float(score) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("seed", [None, 11])
def test_sampling_top_k_1_equals_greedy(seed):
    table = random_table(8)
    step = make_step(table)
    state, constants = make_inputs(eos_bias([0.0, -2.0, 1.0]))
    greedy = greedy_decode(step, state, constants, batch_size=3, max_length=9)
    sampled = sample_decode(step, state, constants, batch_size=3, max_length=9, temperature=0.7, top_k=1, seed=seed)
    assert isinstance(sampled, DecodeResult)
    np.testing.assert_array_equal(sampled.ids.numpy(), greedy.ids.numpy())
    np.testing.assert_array_equal(sampled.lengths.numpy(), greedy.lengths.numpy())
    np.testing.assert_array_equal(sampled.scores.numpy(), greedy.scores.numpy())


def test_sampling_respects_top_k():
    table = random_table(9, content=(1, 4, 5))
    batch = 64
    step = make_step(table)
    state, constants = make_inputs(zero_bias(batch))
    result = sample_decode(step, state, constants, batch_size=batch, max_length=6, temperature=3.0, top_k=2, seed=5)
    ids, lengths = result.ids.numpy(), result.lengths.numpy()
    seen_second_choice = False
    for b in range(batch):
        prev = BOS
        for token in ids[b, : lengths[b]]:
            top2 = sorted(range(VOCAB), key=lambda v: table[prev][v], reverse=True)[:2]
            assert token in top2
            seen_second_choice |= token == top2[1]
            prev = token
    assert seen_second_choice  # really sampling, not arg-max
    again = sample_decode(step, state, constants, batch_size=batch, max_length=6, temperature=3.0, top_k=2, seed=5)
    np.testing.assert_array_equal(again.ids.numpy(), ids)  # seeded => reproducible


class ToyDecoder(tf.Module):
    """A toy model exported with decoding inside its serving functions."""

    def __init__(self, table):
        super().__init__()
        self.table = tf.Variable(table, dtype=tf.float32, trainable=False)

    def _step(self, ids, state, constants):
        logits = tf.gather(self.table, ids) + constants["bias"]
        attention = tf.one_hot(ids % MEMORY, MEMORY) + 0.0 * constants["memory"]
        return logits, {"counter": state["counter"] + 1.0}, attention

    @tf.function(input_signature=[tf.TensorSpec([None, VOCAB], tf.float32), tf.TensorSpec([None], tf.int32)])
    def decode(self, bias, max_length):
        batch = tf.shape(bias)[0]
        state = {"counter": tf.zeros([batch, 1])}
        constants = {"bias": bias, "memory": tf.zeros([batch, MEMORY])}
        greedy = greedy_decode(self._step, state, constants, batch, max_length, return_attention=True)
        beam = beam_search_decode(
            self._step,
            state,
            constants,
            batch,
            beam_size=3,
            max_length=max_length,
            length_penalty=0.6,
            n_best=2,
            return_attention=True,
        )
        return {
            "greedy_ids": greedy.ids,
            "greedy_scores": greedy.scores,
            "greedy_attention": greedy.attention,
            "beam_ids": beam.ids,
            "beam_scores": beam.scores,
            "beam_attention": beam.attention,
        }


def test_decoding_in_tf_function_and_saved_model(tmp_path):
    table = random_table(10)
    module = ToyDecoder(table)
    inputs = [(eos_bias([1.0, -3.0]), [4, 7]), (eos_bias([0.0, 2.0, -1.0]), [5, 3, 6])]
    traced = [module.decode(tf.constant(b), tf.constant(m)) for b, m in inputs]
    assert module.decode.experimental_get_tracing_count() == 1  # one trace, any batch size

    tf.saved_model.save(module, str(tmp_path / "toy"))
    restored = tf.saved_model.load(str(tmp_path / "toy"))
    step = make_step(table)
    for (biases, limits), from_function in zip(inputs, traced):
        from_saved = restored.decode(tf.constant(biases), tf.constant(limits))
        state, constants = make_inputs(biases)
        batch = len(biases)
        greedy = greedy_decode(step, state, constants, batch, tf.constant(limits), return_attention=True)
        beam = beam_search_decode(
            step,
            state,
            constants,
            batch,
            beam_size=3,
            max_length=tf.constant(limits),
            length_penalty=0.6,
            n_best=2,
            return_attention=True,
        )
        eager = {
            "greedy_ids": greedy.ids,
            "greedy_scores": greedy.scores,
            "greedy_attention": greedy.attention,
            "beam_ids": beam.ids,
            "beam_scores": beam.scores,
            "beam_attention": beam.attention,
        }
        for key, value in eager.items():
            np.testing.assert_allclose(from_function[key].numpy(), value.numpy(), rtol=1e-6)
            np.testing.assert_allclose(from_saved[key].numpy(), value.numpy(), rtol=1e-6)


def expected_attention(ids, length):
    out = np.zeros([len(ids), MEMORY], np.float32)
    prev = BOS
    for pos in range(int(length)):
        out[pos, prev % MEMORY] = 1.0
        prev = int(ids[pos])
    return out


def test_return_attention_shapes():
    table = random_table(12)
    step = make_step(table)
    state, constants = make_inputs(eos_bias([0.5, -2.0]))
    greedy = greedy_decode(step, state, constants, batch_size=2, max_length=6, return_attention=True)
    time = greedy.ids.shape[1]
    assert greedy.attention.shape == (2, time, MEMORY)
    assert greedy.attention.dtype == tf.float32
    beam = beam_search_decode(
        step, state, constants, batch_size=2, beam_size=3, max_length=6, n_best=3, return_attention=True
    )
    time = beam.ids.shape[2]
    assert beam.attention.shape == (2, 3, time, MEMORY)
    # Values follow the reordered beams: attention at position t reflects token t-1.
    for b in range(2):
        np.testing.assert_array_equal(
            greedy.attention[b].numpy(), expected_attention(greedy.ids[b].numpy(), greedy.lengths[b])
        )
        for k in range(3):
            np.testing.assert_array_equal(
                beam.attention[b, k].numpy(), expected_attention(beam.ids[b, k].numpy(), beam.lengths[b, k])
            )
    assert greedy_decode(step, state, constants, 2, 6).attention is None
    assert beam_search_decode(step, state, constants, 2, 3, 6).attention is None


def test_invalid_arguments():
    step = make_step(random_table(0))
    state, constants = make_inputs(zero_bias())
    with pytest.raises(ValueError, match="n_best"):
        beam_search_decode(step, state, constants, 1, beam_size=2, max_length=3, n_best=3)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search_decode(step, state, constants, 1, beam_size=0, max_length=3)
    with pytest.raises(ValueError, match="temperature"):
        sample_decode(step, state, constants, 1, max_length=3, temperature=0.0)


def test_suppress_tokens_keeps_unk_out_and_renormalises():
    # After BOS the most likely token is UNK (0.6); with UNK suppressed, token 4 (0.3 of the 0.4 left).
    step = make_step(table_from_probs({BOS: {UNK: 0.6, 4: 0.3, EOS: 0.1}, UNK: {EOS: 1.0}, 4: {EOS: 1.0}}))
    state, constants = make_inputs([[0.0] * VOCAB])
    plain = greedy_decode(step, state, constants, batch_size=1, max_length=5)
    assert plain.ids.numpy()[0, :2].tolist() == [UNK, EOS]
    blocked = suppress_tokens(step, [UNK])
    greedy = greedy_decode(blocked, state, constants, batch_size=1, max_length=5)
    assert greedy.ids.numpy()[0, :2].tolist() == [4, EOS]
    assert greedy.scores.numpy()[0] == pytest.approx(math.log(0.75), abs=1e-5)
    beam = beam_search_decode(blocked, state, constants, batch_size=1, beam_size=2, max_length=5, n_best=2)
    assert beam.ids.numpy()[0, :, :2].tolist() == [[4, EOS], [EOS, PAD]]  # the two hypotheses without UNK
