"""Greedy, sampling and beam-search decoding over a decoder step function.

Every strategy drives the *decoder step contract* of ``docs/DESIGN.md``::

    step_fn(ids, state, constants) -> (logits, new_state, attention)

* ``ids`` ``int32 [batch]``: the previous target token (``bos_id`` at the first step);
* ``state``: nested structure (``tf.nest``) of tensors with leading dimension ``batch``;
* ``constants``: nested structure of tensors with leading dimension ``batch`` that never
  changes during decoding (encoder memory and mask);
* ``logits`` ``float32 [batch, vocab]`` (unnormalised), ``new_state`` same structure as ``state``,
  ``attention`` ``float32 [batch, memory_time]``.

The decoders are written with plain TensorFlow ops and ``tf.while_loop`` (no Python loop over
time, no numpy, no custom ops), so the same code runs eagerly, inside ``tf.function`` with a
dynamic batch dimension (one trace for every batch size) and inside a SavedModel served by stock
TensorFlow Serving. The whole batch is decoded at once.

Conventions shared by all strategies:

* The *length* of a hypothesis counts its tokens up to and including ``eos_id``; a hypothesis that
  reaches its maximum length without EOS has length ``max_length`` and contains no EOS.
* Positions after the end of a hypothesis hold ``pad_id`` (0) and zero attention; they add
  nothing to the score.
* ``max_length`` is the maximum number of generated tokens (EOS included) and may be a Python
  int, a scalar tensor or an ``int32 [batch]`` tensor of per-sentence limits
  (see :func:`max_output_length`).
* Scores are sums of ``log_softmax(logits)`` of the chosen tokens (natural log).

Beam search follows Graves (2012), "Sequence Transduction with Recurrent Neural Networks", and
Sutskever et al. (2014), "Sequence to Sequence Learning with Neural Networks"; the length penalty
is the GNMT one of Wu et al. (2016), "Google's Neural Machine Translation System".
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import tensorflow as tf

from pipelines.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from seq2seq.config import validate_decode
from seq2seq.registry import Registry

StepFn = Callable[[tf.Tensor, Any, Any], tuple]

_NEG_INF = float("-inf")


class DecodeResult(NamedTuple):
    """Output of :func:`greedy_decode` and :func:`sample_decode`.

    Attributes:
      ids: ``int32 [batch, time]``; EOS included, ``PAD`` after it. ``time`` is the number of
        decoding steps run (the longest hypothesis of the batch).
      lengths: ``int32 [batch]``, tokens up to and including EOS.
      scores: ``float32 [batch]``, sum of the model log-probabilities of the emitted tokens.
      attention: ``float32 [batch, time, memory_time]`` (zeros after the end) or ``None``.
    """

    ids: tf.Tensor
    lengths: tf.Tensor
    scores: tf.Tensor
    attention: Optional[tf.Tensor]


class BeamResult(NamedTuple):
    """Output of :func:`beam_search_decode`; hypotheses sorted by ``scores`` descending.

    Attributes:
      ids: ``int32 [batch, n_best, time]``; EOS included, ``PAD`` after it.
      lengths: ``int32 [batch, n_best]``, tokens up to and including EOS.
      scores: ``float32 [batch, n_best]``, length-normalised score used for ranking
        (``log_probs / gnmt_length_penalty(lengths, alpha)``).
      log_probs: ``float32 [batch, n_best]``, raw sum of log-probabilities.
      attention: ``float32 [batch, n_best, time, memory_time]`` or ``None``.

    When fewer than ``n_best`` distinct hypotheses exist (tiny vocabularies), the missing entries
    have ``scores == log_probs == -inf``, ``lengths == 0`` and all-``PAD`` ids.
    """

    ids: tf.Tensor
    lengths: tf.Tensor
    scores: tf.Tensor
    log_probs: tf.Tensor
    attention: Optional[tf.Tensor]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def suppress_tokens(step_fn: StepFn, token_ids) -> StepFn:
    """`step_fn` whose logits give the tokens `token_ids` no chance of being chosen.

    Used with `decode.block_unk` to keep `<unk>` out of the output: greedy, sampling and beam search then
    pick the best other token. The logits of `token_ids` are set to -1e9 (finite, so a softmax over a
    row stays defined), in float32.

    Args:
      step_fn: a decoding step (module docstring contract).
      token_ids: sequence of int ids in [0, vocab).

    Returns:
      a step function with the same contract.
    """
    token_ids = sorted({int(i) for i in token_ids})

    def step(ids, state, constants):
        logits, new_state, attention = step_fn(ids, state, constants)
        logits = tf.cast(logits, tf.float32)
        vocab = tf.shape(logits)[-1]
        blocked = tf.reduce_any(tf.equal(tf.range(vocab)[:, None], tf.constant(token_ids, tf.int32)[None, :]), -1)
        return tf.where(blocked[None, :], tf.constant(-1e9, tf.float32), logits), new_state, attention

    return step


def block_repeated_ngrams(
    step_fn: StepFn, max_n: int, bos_id: int = BOS_ID, eos_id: int = EOS_ID, pad_id: int = PAD_ID
) -> tuple[StepFn, Callable[[Any, Any], Any]]:
    """`step_fn` that never lets a hypothesis repeat an n-gram (1 <= n <= `max_n`) back to back.

    Used with `decode.block_repeats`: a token is blocked when it would complete an n-gram immediately
    followed by an identical copy of itself ("ein ein", "am strand am strand"), for every n in
    [1, max_n], in target pieces (ids). It is a decoding-side counterpart of coverage against
    over-translation (Tu et al. 2016, "Modeling Coverage for Neural Machine Translation"; the failure
    `seq2seq.repetition` measures). Unlike the `no_repeat_ngram_size` of fairseq / Hugging Face, which bans
    any n-gram seen anywhere before, only back-to-back repeats are banned: "a b c a b" stays possible.

    The last ``2 * max_n - 1`` emitted ids travel inside the decoder state, which becomes
    ``(inner_state, history int32 [batch, 2 * max_n - 1])`` (oldest first, ``-1`` = nothing yet). Beam
    search tiles and reorders the whole state by parent beam, so the history follows each hypothesis in
    greedy, sampling and beam search alike. Each step appends the incoming `ids` (BOS, EOS and PAD count
    as ``-1``, never as content) and, for each n with h = the last 2n - 1 history entries (none ``-1``),
    blocks x = h_n when h_1..h_{n-1} == h_{n+1}..h_{2n-1} (for n = 1: x = the last token). Blocked logits
    are set to -1e9 (finite, float32, as in :func:`suppress_tokens`); `eos_id` is never blocked, so a
    hypothesis can always end. At most `max_n` tokens are blocked per step. Plain TF ops with fixed
    static shapes: works eagerly, in `tf.function` with a dynamic batch and in a SavedModel.

    Args:
      step_fn: a decoding step (module docstring contract).
      max_n: Python int >= 1, the longest n-gram whose back-to-back repeat is blocked.
      bos_id, eos_id, pad_id: special ids kept out of matches (defaults 2, 3, 0 from ``pipelines/vocab.py``).

    Returns:
      ``(step, wrap_initial_state)``: `step` has the step contract over the wrapped state;
      ``wrap_initial_state(state, batch_size) -> (state, history)`` builds the wrapped initial state
      (``batch_size``: Python int or scalar int32 tensor; history all ``-1``). Beam search tiles it itself.

    Raises:
      ValueError: `max_n` not a positive Python int.
    """
    _check_positive_int("max_n", max_n)
    window = 2 * max_n - 1
    special = tf.constant(sorted({int(bos_id), int(eos_id), int(pad_id)}), tf.int32)

    def wrap_initial_state(state, batch_size):
        return state, tf.fill(tf.stack([tf.cast(batch_size, tf.int32), window]), tf.constant(-1, tf.int32))

    def step(ids, state, constants):
        inner_state, history = state
        logits, new_inner_state, attention = step_fn(ids, inner_state, constants)
        logits = tf.cast(logits, tf.float32)
        ids = tf.cast(ids, tf.int32)
        is_content = (ids >= 0) & tf.logical_not(tf.reduce_any(tf.equal(ids[:, None], special[None, :]), -1))
        history = tf.concat([history[:, 1:], tf.where(is_content, ids, -1)[:, None]], axis=1)
        history = _static_shape(history, [None, window])
        tokens = tf.range(tf.shape(logits)[-1])[None, :]
        blocked = tf.zeros_like(logits, tf.bool)
        for n in range(1, max_n + 1):
            h = history[:, window - (2 * n - 1) :]  # h_1 .. h_{2n-1}
            match = tf.reduce_all(h >= 0, axis=1) & tf.reduce_all(tf.equal(h[:, : n - 1], h[:, n:]), axis=1)
            blocked |= match[:, None] & tf.equal(tokens, h[:, n - 1 : n])
        blocked &= tf.not_equal(tokens, eos_id)
        logits = tf.where(blocked, tf.constant(-1e9, tf.float32), logits)
        return logits, (new_inner_state, history), attention

    return step, wrap_initial_state


def max_output_length(source_lengths, absolute, relative=None, offset=0) -> tf.Tensor:
    """Per-sentence maximum output length ``min(absolute, ceil(relative * source_length) + offset)``.

    Args:
      source_lengths: ``int [batch]`` source lengths (tokens).
      absolute: int or scalar tensor, hard upper bound for every sentence.
      relative: optional float; ``None`` means "absolute only".
      offset: int added to the relative bound (default 0).

    Returns:
      ``int32 [batch]``, clipped below at 1 so that every sentence may emit at least EOS.
    """
    source_lengths = tf.convert_to_tensor(source_lengths)
    absolute = tf.cast(absolute, tf.int32)
    if relative is None:
        limit = tf.fill(tf.shape(source_lengths), absolute)
    else:
        rel = tf.math.ceil(tf.cast(relative, tf.float32) * tf.cast(source_lengths, tf.float32))
        limit = tf.minimum(absolute, tf.cast(rel, tf.int32) + tf.cast(offset, tf.int32))
    return tf.maximum(limit, 1)


def gnmt_length_penalty(lengths, alpha) -> tf.Tensor:
    """GNMT length penalty ``lp(Y) = (5 + |Y|)^alpha / (5 + 1)^alpha`` (Wu et al. 2016, eq. 14).

    ``|Y|`` counts the EOS token when the hypothesis has one. ``alpha == 0`` gives 1 (no
    penalty). The ranking score of a hypothesis is ``log P(Y) / lp(Y)``.

    Args:
      lengths: int or float tensor of any shape.
      alpha: float or scalar float tensor, ``>= 0``.

    Returns:
      ``float32`` tensor with the shape of ``lengths``.
    """
    lengths = tf.cast(lengths, tf.float32)
    return tf.pow((5.0 + lengths) / 6.0, tf.cast(alpha, tf.float32))


def _per_sentence_max_length(max_length, batch_size) -> tf.Tensor:
    """Broadcasts a Python int, scalar or ``[batch]`` ``max_length`` to ``int32 [batch]``."""
    return tf.broadcast_to(tf.cast(max_length, tf.int32), tf.reshape(batch_size, [1]))


def _loop_bound(max_lengths) -> tf.Tensor:
    """Number of steps needed for the longest sentence (0 for an empty batch)."""
    return tf.maximum(tf.reduce_max(tf.concat([max_lengths, [0]], axis=0)), 0)


def _static_shape(tensor, shape) -> tf.Tensor:
    """`tensor` with its static shape merged with `shape` (a trace-time check only, no op in the graph).

    Unlike `tf.ensure_shape`, this adds no EnsureShape op, which has no LiteRT kernel.

    Raises:
      ValueError: the shapes are incompatible.
    """
    tensor = tf.convert_to_tensor(tensor)
    tensor.set_shape(shape)
    return tensor


def _keep_shapes(new, old):
    """Pins the static shapes of a structure returned by ``step_fn`` to those of its input."""
    return tf.nest.map_structure(lambda n, o: _static_shape(n, o.shape), new, old)


def _call_step(step_fn, ids, state, constants):
    """Calls ``step_fn`` and casts ``logits``/``attention`` to float32 with stable state shapes."""
    logits, new_state, attention = step_fn(ids, state, constants)
    new_state = _keep_shapes(new_state, state)
    return tf.cast(logits, tf.float32), new_state, tf.cast(attention, tf.float32)


def _step_buffer(num_steps, element_shape, dtype) -> tf.Tensor:
    """Zeros ``[num_steps, *element_shape]``: one row per decoding step, filled by :func:`_write_step`.

    Token ids are collected in a preallocated tensor rather than a TensorArray: a tensor list whose batch
    dimension is only known at run time cannot be lowered by the LiteRT converter, a tensor can.
    """
    return tf.zeros(tf.concat([tf.reshape(num_steps, [1]), tf.stack(element_shape)], 0), dtype)


def _write_step(buffer, t, value) -> tf.Tensor:
    """``buffer`` with row ``t`` replaced by ``value`` (shape ``buffer.shape[1:]``)."""
    rows = tf.equal(tf.range(tf.shape(buffer)[0]), t)
    rows = tf.reshape(rows, tf.concat([[-1], tf.ones([tf.rank(value)], tf.int32)], 0))
    return tf.where(rows, value[None], buffer)


def _static_size(size) -> Optional[int]:
    """A Python int when `size` (int or scalar tensor) is known while tracing, else None."""
    value = tf.get_static_value(size)
    return None if value is None else int(value)


def _attention_array(wanted: bool, element_shape, size=0):
    """The TensorArray that collects per-step attention, or an empty placeholder when none is wanted.

    Leaving the array out of the loop when attention is not asked for keeps the graph free of tensor lists
    whose element shape is only known at run time, which the LiteRT converter cannot lower.
    """
    if not wanted:
        return ()
    dynamic = isinstance(size, int) and size == 0  # grows step by step unless its size is given
    return tf.TensorArray(tf.float32, size=size, dynamic_size=dynamic, element_shape=element_shape)


def _check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive Python int, got {value!r}")


# --------------------------------------------------------------------------------------------
# Greedy and sampling: one loop, parameterised by a token-selection function
# --------------------------------------------------------------------------------------------


def _sequential_decode(
    step_fn, initial_state, constants, batch_size, max_length, select_fn, bos_id, eos_id, return_attention
) -> DecodeResult:
    """Decodes one token per step for every sentence; ``select_fn(logits, t) -> int32 [batch]``."""
    max_lengths = _per_sentence_max_length(max_length, batch_size)
    loop_bound = _loop_bound(max_lengths)

    def cond(t, ids, state, finished, lengths, scores, ids_buffer, attention_ta):
        return tf.logical_and(t < loop_bound, tf.logical_not(tf.reduce_all(finished)))

    def body(t, ids, state, finished, lengths, scores, ids_buffer, attention_ta):
        logits, state, attention = _call_step(step_fn, ids, state, constants)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        chosen = tf.cast(select_fn(logits, t), tf.int32)
        chosen = tf.where(finished, tf.constant(PAD_ID, tf.int32), chosen)
        chosen_log_prob = tf.gather(log_probs, chosen, batch_dims=1)
        scores += tf.where(finished, 0.0, chosen_log_prob)
        lengths += tf.cast(tf.logical_not(finished), tf.int32)
        ids_buffer = _write_step(ids_buffer, t, chosen)
        if return_attention:
            attention_ta = attention_ta.write(t, tf.where(finished[:, None], 0.0, attention))
        finished = finished | tf.equal(chosen, eos_id) | (t + 1 >= max_lengths)
        return t + 1, chosen, state, finished, lengths, scores, ids_buffer, attention_ta

    loop_vars = (
        tf.constant(0, tf.int32),
        tf.fill([batch_size], tf.constant(bos_id, tf.int32)),
        initial_state,
        max_lengths <= 0,
        tf.zeros([batch_size], tf.int32),
        tf.zeros([batch_size], tf.float32),
        _step_buffer(loop_bound, [batch_size], tf.int32),
        _attention_array(return_attention, [_static_size(batch_size), None]),
    )
    steps, _, _, _, lengths, scores, ids_buffer, attention_ta = tf.while_loop(cond, body, loop_vars)
    ids = tf.transpose(ids_buffer[:steps])
    attention = None
    if return_attention:
        attention = _stack_time_major(attention_ta, batch_size, [0], tf.float32)
    return DecodeResult(ids=ids, lengths=lengths, scores=scores, attention=attention)


def _stack_time_major(tensor_array, batch_size, trailing, dtype):
    """Stacks ``[time][batch, ...]`` into ``[batch, time, ...]``; empty when no step ran."""
    empty = tf.zeros(tf.concat([[0], tf.reshape(batch_size, [1]), trailing], 0), dtype)
    stacked = tf.cond(tensor_array.size() > 0, tensor_array.stack, lambda: empty)
    rank = len(trailing) + 2
    return tf.transpose(stacked, [1, 0] + list(range(2, rank)))


def _greedy_select(logits, t):
    del t
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def _make_sampling_select(temperature, top_k, seed):
    """Returns ``select_fn`` sampling from ``softmax(logits / temperature)`` restricted to top-k."""

    def select(logits, t):
        logits = logits / tf.cast(temperature, tf.float32)
        vocab = tf.shape(logits)[-1]
        top_k_t = tf.cast(top_k, tf.int32)
        k = tf.clip_by_value(top_k_t, 1, vocab)
        kth_best = tf.math.top_k(logits, k=k).values[:, -1:]
        truncated = tf.where(logits < kth_best, _NEG_INF, logits)
        logits = tf.where(top_k_t > 0, truncated, logits)
        if seed is None:
            samples = tf.random.categorical(logits, 1, dtype=tf.int32)
        else:
            step_seed = tf.stack([tf.cast(seed, tf.int64), tf.cast(t, tf.int64)])
            samples = tf.random.stateless_categorical(logits, 1, seed=step_seed, dtype=tf.int32)
        return samples[:, 0]

    return select


def greedy_decode(
    step_fn: StepFn,
    initial_state,
    constants,
    batch_size,
    max_length,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    return_attention: bool = False,
) -> DecodeResult:
    """Greedy (arg-max) decoding.

    Args:
      step_fn: decoder step (see module docstring).
      initial_state: nested ``[batch, ...]`` decoder state.
      constants: nested ``[batch, ...]`` tensors passed unchanged to every step.
      batch_size: Python int or scalar int32 tensor (e.g. ``tf.shape(source)[0]``).
      max_length: Python int, scalar or ``int32 [batch]``; max tokens per sentence, EOS included.
      bos_id, eos_id: special ids (defaults from ``pipelines/vocab.py``: 2 and 3).
      return_attention: also return the attention of every emitted token.

    Returns:
      :class:`DecodeResult`. Ties are broken towards the lowest id.
    """
    return _sequential_decode(
        step_fn, initial_state, constants, batch_size, max_length, _greedy_select, bos_id, eos_id, return_attention
    )


def sample_decode(
    step_fn: StepFn,
    initial_state,
    constants,
    batch_size,
    max_length,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    return_attention: bool = False,
    temperature=1.0,
    top_k=0,
    seed: Optional[int] = None,
) -> DecodeResult:
    """Ancestral sampling with temperature and top-k truncation (Fan et al. 2018).

    Arguments as :func:`greedy_decode`, plus:
      temperature: float ``> 0`` (or scalar tensor); logits are divided by it before sampling.
      top_k: int (or scalar tensor); sample only among the ``top_k`` highest logits of each step
        (tokens tied with the k-th logit are kept too). ``0`` = the full distribution.
      seed: optional int. With a seed, sampling uses ``tf.random.stateless_categorical`` with the
        per-step seed ``[seed, step]`` and is reproducible (also inside a SavedModel); without one,
        the stateful ``tf.random.categorical`` is used.

    Returns:
      :class:`DecodeResult`; ``scores`` are the log-probabilities under the *model* distribution
      (``log_softmax(logits)``, temperature 1, no truncation), so they are comparable with greedy.

    Raises:
      ValueError: if a Python ``temperature <= 0`` or ``top_k < 0`` is given.
    """
    if isinstance(temperature, (int, float)) and temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if isinstance(top_k, int) and top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    select = _make_sampling_select(temperature, top_k, seed)
    return _sequential_decode(
        step_fn, initial_state, constants, batch_size, max_length, select, bos_id, eos_id, return_attention
    )


# --------------------------------------------------------------------------------------------
# Beam search
# --------------------------------------------------------------------------------------------


def _tile_beams(structure, beam_size):
    """``[batch, ...] -> [batch * beam, ...]`` with the beams of one sentence adjacent."""
    return tf.nest.map_structure(lambda x: tf.repeat(x, beam_size, axis=0), structure)


def _gather_beams(structure, flat_indices):
    """Reorders a ``[batch * beam, ...]`` structure by flat (sentence * beam + parent) indices."""
    return tf.nest.map_structure(lambda x: tf.gather(x, flat_indices), structure)


def _initial_beam_log_probs(batch_size, beam_size):
    """Only beam 0 is live at step 0 so the beam does not fill with copies of one hypothesis."""
    first = tf.zeros([batch_size, 1], tf.float32)
    rest = tf.fill([batch_size, beam_size - 1], _NEG_INF)
    return tf.concat([first, rest], axis=1)


def _expand_candidates(log_probs, beam_log_probs, beam_finished, beam_lengths, t, alpha):
    """Scores every (beam, token) continuation; returns ``(raw, ranking)`` ``[batch, beam, vocab]``.

    A live beam's continuation has length ``t + 1`` and is ranked by ``raw / lp(t + 1)``; a finished
    beam has a single continuation, ``PAD`` at zero cost, ranked by its final normalised score.
    """
    vocab = tf.shape(log_probs)[-1]
    is_pad = tf.equal(tf.range(vocab), PAD_ID)[None, None, :]
    live_raw = beam_log_probs[:, :, None] + log_probs
    done_raw = tf.where(is_pad, beam_log_probs[:, :, None], _NEG_INF)
    raw = tf.where(beam_finished[:, :, None], done_raw, live_raw)
    lengths = tf.where(beam_finished, beam_lengths, t + 1)
    ranking = raw / gnmt_length_penalty(lengths, alpha)[:, :, None]
    return raw, ranking


def _merge_finished(finished, candidates, add_mask, n_keep):
    """Keeps the ``n_keep`` best of the finished set plus the masked-in candidates.

    Both ``finished`` and ``candidates`` are dicts of ``[batch, n]`` tensors with keys ``score``,
    ``log_prob``, ``length``, ``end`` (time of the last token) and ``slot`` (beam index at ``end``).
    """
    candidates = dict(candidates)
    candidates["score"] = tf.where(add_mask, candidates["score"], _NEG_INF)
    candidates["log_prob"] = tf.where(add_mask, candidates["log_prob"], _NEG_INF)
    merged = {key: tf.concat([finished[key], candidates[key]], axis=1) for key in finished}
    _, best = tf.math.top_k(merged["score"], k=n_keep)
    return {key: tf.gather(value, best, batch_dims=1) for key, value in merged.items()}


def _empty_finished(batch_size, n_keep):
    shape = [batch_size, n_keep]
    return {
        "score": tf.fill(shape, _NEG_INF),
        "log_prob": tf.fill(shape, _NEG_INF),
        "length": tf.zeros(shape, tf.int32),
        "end": tf.fill(shape, -1),
        "slot": tf.zeros(shape, tf.int32),
    }


def _backtrack(tokens, parents, attention, finished, num_steps):
    """Rebuilds finished hypotheses from per-step choices by following parent pointers backwards.

    Args:
      tokens, parents: ``int32 [time, batch, beam]``: token chosen for beam slot ``j`` at step ``s``
        and the slot it extends (slot index at step ``s - 1``).
      attention: ``float32 [time, batch, beam, memory_time]`` indexed by the *parent* slot, or None.
      finished: dict of ``[batch, n]`` tensors (see :func:`_merge_finished`).
      num_steps: scalar int32, ``time``.

    Returns:
      ``(ids int32 [batch, n, time], attention float32 [batch, n, time, memory_time] or None)``.
    """
    end = finished["end"]

    def body(s, pointer, ids_buffer, attention_ta):
        inside = s <= end
        token = tf.gather(tokens[s], pointer, batch_dims=1)
        parent = tf.gather(parents[s], pointer, batch_dims=1)
        ids_buffer = _write_step(ids_buffer, s, tf.where(inside, token, PAD_ID))
        if attention is not None:
            step_attention = tf.gather(attention[s], parent, batch_dims=1)
            attention_ta = attention_ta.write(s, tf.where(inside[:, :, None], step_attention, 0.0))
        return s - 1, tf.where(inside, parent, pointer), ids_buffer, attention_ta

    batch_size, n = tf.shape(end)[0], tf.shape(end)[1]
    loop_vars = (
        num_steps - 1,
        finished["slot"],
        _step_buffer(num_steps, [batch_size, n], tf.int32),
        _attention_array(attention is not None, [end.shape[0], end.shape[1], None], size=num_steps),
    )
    _, _, ids_buffer, attention_ta = tf.while_loop(lambda s, *_: s >= 0, body, loop_vars)
    ids = tf.transpose(ids_buffer, [1, 2, 0])
    if attention is None:
        return ids, None
    attention_shape = [batch_size, n, tf.shape(attention)[-1]]
    stacked = _stack_or_empty(attention_ta, attention_shape, tf.float32)
    return ids, tf.transpose(stacked, [1, 2, 0, 3])


def _stack_or_empty(tensor_array, element_shape, dtype):
    empty = tf.zeros(tf.concat([[0], tf.stack(element_shape)], 0), dtype)
    return tf.cond(tensor_array.size() > 0, tensor_array.stack, lambda: empty)


def beam_search_decode(
    step_fn: StepFn,
    initial_state,
    constants,
    batch_size,
    beam_size: int,
    max_length,
    length_penalty=0.0,
    n_best: int = 1,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    return_attention: bool = False,
) -> BeamResult:
    """Batched beam search (Graves 2012; Sutskever et al. 2014) with GNMT length penalty.

    ``initial_state`` and ``constants`` are tiled to ``batch * beam_size`` once; only ``state``
    is reordered (``tf.gather`` by parent beam) after each step. At step 0 only beam 0 is live
    (the others start at ``-inf``). Every step, each live beam proposes all ``vocab`` tokens and
    each finished beam proposes only ``PAD`` at zero cost; the ``beam_size`` best proposals by
    ranking score survive. The ranking score of a hypothesis is
    ``log P(Y) / lp(Y)`` with ``lp(Y) = ((5 + |Y|) / 6) ** length_penalty`` (Wu et al. 2016),
    each hypothesis normalised by its *own* length ``|Y|``, which counts the EOS token (and equals
    ``max_length`` for a hypothesis cut at the limit). EOS is compared by id; a beam stays finished.

    Each hypothesis that enters the beam with EOS (and every live beam reaching its maximum length)
    is also recorded in a separate finished set that keeps the ``n_best`` best, so a finished
    hypothesis later pushed out of the beam still counts. Decoding stops when every beam of every
    sentence is finished, or at ``max_length``. With ``beam_size == 1`` the result equals
    :func:`greedy_decode`.

    Args:
      step_fn: decoder step (see module docstring).
      initial_state: nested ``[batch, ...]`` decoder state.
      constants: nested ``[batch, ...]`` tensors passed unchanged to every step.
      batch_size: Python int or scalar int32 tensor.
      beam_size: Python int ``>= 1``.
      max_length: Python int, scalar or ``int32 [batch]``; max tokens per hypothesis, EOS included.
      length_penalty: GNMT ``alpha >= 0`` (float or scalar tensor); 0 = raw log-probability.
      n_best: Python int, ``1 <= n_best <= beam_size``, hypotheses returned per sentence.
      bos_id, eos_id: special ids (defaults 2 and 3 from ``pipelines/vocab.py``).
      return_attention: also return the attention of every emitted token.

    Returns:
      :class:`BeamResult`, hypotheses of each sentence distinct and sorted by ``scores``
      descending.

    Raises:
      ValueError: bad ``beam_size``/``n_best`` or a negative Python ``length_penalty``.
    """
    _check_positive_int("beam_size", beam_size)
    _check_positive_int("n_best", n_best)
    if n_best > beam_size:
        raise ValueError(f"n_best ({n_best}) must be <= beam_size ({beam_size})")
    if isinstance(length_penalty, (int, float)) and length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")

    max_lengths = _per_sentence_max_length(max_length, batch_size)
    loop_bound = _loop_bound(max_lengths)
    constants = _tile_beams(constants, beam_size)
    sentence_offsets = tf.range(batch_size)[:, None] * beam_size

    def cond(t, *rest):
        done = rest[-1]
        return tf.logical_and(t < loop_bound, tf.logical_not(tf.reduce_all(done)))

    def body(
        t,
        ids,
        state,
        beam_log_probs,
        beam_finished,
        beam_lengths,
        finished,
        tokens_buffer,
        parents_buffer,
        attention_ta,
        done,
    ):
        logits, state, attention = _call_step(step_fn, ids, state, constants)
        vocab = tf.shape(logits)[-1]
        log_probs = tf.reshape(tf.nn.log_softmax(logits), [batch_size, beam_size, vocab])
        raw, ranking = _expand_candidates(log_probs, beam_log_probs, beam_finished, beam_lengths, t, length_penalty)
        _, best = tf.math.top_k(tf.reshape(ranking, [batch_size, -1]), k=beam_size)
        parent, token = best // vocab, best % vocab
        new_log_probs = tf.gather(tf.reshape(raw, [batch_size, -1]), best, batch_dims=1)
        parent_finished = tf.gather(beam_finished, parent, batch_dims=1)
        new_lengths = tf.where(parent_finished, tf.gather(beam_lengths, parent, batch_dims=1), t + 1)
        valid = new_log_probs > _NEG_INF
        at_limit = (t + 1 >= max_lengths)[:, None]
        ends_now = valid & tf.logical_not(parent_finished) & (tf.equal(token, eos_id) | at_limit)
        candidates = {
            "score": new_log_probs / gnmt_length_penalty(new_lengths, length_penalty),
            "log_prob": new_log_probs,
            "length": new_lengths,
            "end": tf.fill(tf.shape(token), t),
            "slot": tf.broadcast_to(tf.range(beam_size)[None, :], tf.shape(token)),
        }
        finished = _merge_finished(finished, candidates, ends_now & ~done[:, None], n_best)
        new_finished = parent_finished | tf.equal(token, eos_id)
        done = done | at_limit[:, 0] | tf.reduce_all(new_finished | ~valid, axis=1)

        tokens_buffer = _write_step(tokens_buffer, t, token)
        parents_buffer = _write_step(parents_buffer, t, parent)
        if return_attention:
            attention_ta = attention_ta.write(t, tf.reshape(attention, [batch_size, beam_size, -1]))
        flat_parent = tf.reshape(parent + sentence_offsets, [-1])
        state = _gather_beams(state, flat_parent)
        ids = tf.reshape(tf.where(new_finished, PAD_ID, token), [-1])
        return (
            t + 1,
            ids,
            state,
            new_log_probs,
            new_finished,
            new_lengths,
            finished,
            tokens_buffer,
            parents_buffer,
            attention_ta,
            done,
        )

    loop_vars = (
        tf.constant(0, tf.int32),
        tf.fill([batch_size * beam_size], tf.constant(bos_id, tf.int32)),
        _tile_beams(initial_state, beam_size),
        _initial_beam_log_probs(batch_size, beam_size),
        tf.zeros([batch_size, beam_size], tf.bool),
        tf.zeros([batch_size, beam_size], tf.int32),
        _empty_finished(batch_size, n_best),
        _step_buffer(loop_bound, [batch_size, beam_size], tf.int32),
        _step_buffer(loop_bound, [batch_size, beam_size], tf.int32),
        _attention_array(return_attention, [_static_size(batch_size), beam_size, None]),
        max_lengths <= 0,
    )
    results = tf.while_loop(cond, body, loop_vars)
    num_steps, finished = results[0], results[6]
    tokens, parents, attention_ta = results[7][:num_steps], results[8][:num_steps], results[9]
    attention = None
    if return_attention:
        attention = _stack_or_empty(attention_ta, [batch_size, beam_size, 0], tf.float32)
    ids, attention = _backtrack(tokens, parents, attention, finished, num_steps)
    return BeamResult(
        ids=ids,
        lengths=finished["length"],
        scores=finished["score"],
        log_probs=finished["log_prob"],
        attention=attention,
    )


# --------------------------------------------------------------------------------------------------
# Strategies by name (`decode.strategy`), over a model's `encode` / `step`

DECODE_STRATEGIES = Registry("decoding strategy", "decode.strategy")


def _single(result: DecodeResult) -> BeamResult:
    """A one-hypothesis result with the n-best axis of `BeamResult` (n = 1)."""
    attention = None if result.attention is None else result.attention[:, None]
    return BeamResult(
        result.ids[:, None], result.lengths[:, None], result.scores[:, None], result.scores[:, None], attention
    )


@DECODE_STRATEGIES.register("beam")
def _beam(decode, **common) -> BeamResult:
    return beam_search_decode(
        beam_size=decode.beam_size, length_penalty=decode.length_penalty, n_best=decode.n_best, **common
    )


@DECODE_STRATEGIES.register("greedy")
def _greedy(decode, **common) -> BeamResult:
    return _single(greedy_decode(**common))


@DECODE_STRATEGIES.register("sample")
def _sample(decode, **common) -> BeamResult:
    return _single(sample_decode(temperature=decode.temperature, top_k=decode.top_k, **common))


def decode_batch(model, source, source_lengths, decode, return_attention=False) -> BeamResult:
    """Decode a batch with the strategy `decode.strategy` over `model.encode` / `model.step`.

    Args:
      model: anything with `encode(source, training=False) -> (state, constants)` and the step contract
        `step(ids, state, constants)`, e.g. a built `seq2seq.model.seq2seq.Seq2Seq`.
      source: the encoder input with leading dimension batch (ids int32 [batch, time], or images/features).
      source_lengths: int32 [batch] source lengths for the relative length limit, or None (absolute only).
      decode: a `seq2seq.config.DecodeConfig` (strategy, beam_size, n_best, length_penalty, max_length,
        max_length_ratio, max_length_offset, temperature, top_k, block_unk: never output `<unk>`,
        block_repeats: N >= 1 = never repeat an n-gram of n <= N back to back, see `block_repeated_ngrams`).
      return_attention: also return attention weights.

    Returns:
      `BeamResult` with an n-best axis: ids int32 [batch, n, time], lengths int32 [batch, n],
      scores float32 [batch, n] (length-normalised for beam search; sum of log-probabilities otherwise),
      attention float32 [batch, n, time, memory_time] or None. Greedy and sampling give n = 1.

    Raises:
      ConfigError: an unknown `decode.strategy`.
    """
    strategy = DECODE_STRATEGIES.get(decode.strategy)
    state, constants = model.encode(source, training=False)
    first = tf.nest.flatten(constants)[0]
    batch_size = first.shape[0] if first.shape[0] is not None else tf.shape(first)[0]
    if source_lengths is None or decode.max_length_ratio is None:
        max_length = tf.fill([batch_size], tf.constant(decode.max_length, tf.int32))
    else:
        max_length = max_output_length(
            source_lengths, decode.max_length, decode.max_length_ratio, decode.max_length_offset
        )
    step_fn = suppress_tokens(model.step, [UNK_ID]) if decode.block_unk else model.step
    if decode.block_repeats:
        step_fn, wrap_initial_state = block_repeated_ngrams(step_fn, decode.block_repeats, BOS_ID, EOS_ID, PAD_ID)
        state = wrap_initial_state(state, batch_size)
    return strategy(
        decode,
        step_fn=step_fn,
        initial_state=state,
        constants=constants,
        batch_size=batch_size,
        max_length=max_length,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        return_attention=return_attention,
    )


def decode_settings(decode, **overrides):
    """`decode` (a DecodeConfig) with the non-None `overrides` applied (e.g. beam_size=1 from the command line).

    `beam_size` is raised to `n_best` when needed, so n-best output always has enough beams.

    Raises:
      TypeError: an override that is not a DecodeConfig field.
      ConfigError: an unknown strategy, or a value `seq2seq.config.validate_decode` refuses (e.g. `block_repeats`
        outside 0..MAX_BLOCK_REPEATS).
    """
    decode = dataclasses.replace(decode, **{k: v for k, v in overrides.items() if v is not None})
    DECODE_STRATEGIES.check(decode.strategy)
    if decode.n_best > decode.beam_size:
        decode = dataclasses.replace(decode, beam_size=decode.n_best)
    validate_decode(decode)
    return decode
