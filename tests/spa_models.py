"""A corpus of small nengo-spa models (nengo-spa 2.0), for `test_spa`.

Every function returns a seeded network with probes. Each model's inputs are
``spa.Transcode`` nodes whose functions the compiler translates: strings and
pointers returned on branches of ``t`` and ``x``, and pointers computed from
the input. Dimensions and neurons are few, so each runs in seconds.
"""

from __future__ import annotations

import nengo
import nengo_spa as spa
import numpy as np

D = 16


def vocabulary(keys="A; B; C; DOG; COLOR; CAT; RED; YES; NO", seed=1, strict=True):
    vocab = spa.Vocabulary(
        D, strict=strict, max_similarity=1.0, pointer_gen=np.random.RandomState(seed)
    )
    vocab.populate(keys)
    return vocab


def sequence(t):
    """A string per interval of time, parsed with the vocabulary."""
    if t < 0.05:
        return "A"
    elif t < 0.1:
        return "DOG*COLOR"
    elif t < 0.15:
        return "0.5*B + C"
    return "0"


def state_binding():
    """Two states fed by strings on branches of t, bound by circular convolution."""
    vocab = vocabulary()
    with spa.Network(seed=11, label="state_binding") as net:
        a_in = spa.Transcode(sequence, output_vocab=vocab, label="a_in")
        b_in = spa.Transcode(lambda t: "RED" if t < 0.1 else "CAT", output_vocab=vocab)
        a = spa.State(vocab, neurons_per_dimension=10, label="a")
        b = spa.State(vocab, neurons_per_dimension=10, label="b")
        bound = spa.State(vocab, neurons_per_dimension=10, label="bound")
        a_in >> a
        b_in >> b
        bind = spa.Bind(vocab, neurons_per_dimension=20, label="bind")  # a * b, smaller
        a >> bind.input_left
        b >> bind.input_right
        bind >> bound
        nengo.Probe(a.output, synapse=0.01, label="a")
        nengo.Probe(bound.output, synapse=0.01, label="bound")
        nengo.Probe(a_in.output, label="a_in")
    return net


def assoc_memories():
    """A thresholding and a winner-take-all associative memory, with pointers
    returned as SemanticPointer objects and symbols."""
    vocab = vocabulary()
    a, b = vocab["A"], vocab["B"]
    with spa.Network(seed=12, label="assoc_memories") as net:
        cue = spa.Transcode(
            lambda t: a if t < 0.1 else 0.8 * b + 0.2 * vocab.parse("C"), output_vocab=vocab
        )
        sym = spa.Transcode(lambda t: spa.sym.CAT if t < 0.08 else spa.sym.DOG, output_vocab=vocab)
        mapping = ["A", "B", "C", "CAT", "DOG"]
        thresholding = spa.ThresholdingAssocMem(
            0.3, input_vocab=vocab, mapping=mapping, n_neurons=20, label="thresholding"
        )
        wta = spa.WTAAssocMem(0.3, input_vocab=vocab, mapping=mapping, n_neurons=20, label="wta")
        cue >> thresholding
        sym >> wta
        nengo.Probe(thresholding.output, synapse=0.01, label="thresholding")
        nengo.Probe(wta.output, synapse=0.01, label="wta")
    return net


def action_selection():
    """Basal ganglia and thalamus choose a pointer by the state's similarities."""
    vocab = vocabulary()
    with spa.Network(seed=13, label="action_selection") as net:
        net.config[spa.BasalGanglia].n_neurons_per_ensemble = 20
        net.config[spa.Thalamus].neurons_action = 20
        stim = spa.Transcode(lambda t: "A" if t < 0.15 else "B", output_vocab=vocab)
        state = spa.State(vocab, neurons_per_dimension=10, label="state")
        answer = spa.State(vocab, neurons_per_dimension=10, label="answer")
        stim >> state
        with spa.ActionSelection() as selection:
            spa.ifmax("a", spa.dot(state, spa.sym.A), spa.sym.YES >> answer)
            spa.ifmax("b", spa.dot(state, spa.sym.B), spa.sym.NO >> answer)
            spa.ifmax("none", 0.3, spa.sym.C >> answer)
        nengo.Probe(selection.bg.output, synapse=0.01, label="bg")
        nengo.Probe(selection.thalamus.output, synapse=0.01, label="thalamus")
        nengo.Probe(answer.output, synapse=0.01, label="answer")
    return net


class Cue:
    """A class-based Transcode function with its vocabulary on ``self``."""

    def __init__(self, vocab):
        self.vocab = vocab

    def __call__(self, t, x):
        cue = self.vocab["A"] if x[0] > 0 else ~self.vocab["B"]
        return cue.normalized()


def transcode_forms():
    """Transcode functions of x: strings on branches of x, pointers scaled by
    and computed from the input, a pointer input bound with a constant, its
    similarity, and a pointer input to a plain vector output."""
    vocab = vocabulary()
    with spa.Network(seed=14, label="transcode_forms") as net:
        wave = nengo.Node(lambda t: np.sin(20 * t), label="wave")
        on_x = spa.Transcode(
            lambda t, x: "YES" if x[0] > 0.3 else "NO * A", size_in=1, output_vocab=vocab
        )
        scaled = spa.Transcode(
            lambda t, x: x[0] * vocab["A"] + (1 - x[0]) * vocab["B"] - 0.5 * vocab["C"],
            size_in=1,
            output_vocab=vocab,
        )
        cls = spa.Transcode(Cue(vocab), size_in=1, output_vocab=vocab)
        for node in (on_x, scaled, cls):
            nengo.Connection(wave, node.input, synapse=None)
        state = spa.State(vocab, neurons_per_dimension=10, label="state")
        scaled >> state
        bind = spa.Transcode(lambda t, p: p * vocab["DOG"], input_vocab=vocab, output_vocab=vocab)
        unbind = spa.Transcode(
            lambda t, p: (vocab["COLOR"] * ~p).v, input_vocab=vocab, output_vocab=vocab
        )
        similar = spa.Transcode(
            lambda t, p: "YES" if p.dot(vocab["A"]) > 0.3 else "NO",
            input_vocab=vocab,
            output_vocab=vocab,
        )
        measure = spa.Transcode(
            lambda t, p: [p.dot(vocab["A"]), p.length()], input_vocab=vocab, size_out=2
        )
        for node in (bind, unbind, similar, measure):
            state >> node
        for label, node in [("on_x", on_x), ("scaled", scaled), ("cls", cls), ("bind", bind)]:
            nengo.Probe(node.output, label=label)
        nengo.Probe(unbind.output, label="unbind")
        nengo.Probe(similar.output, label="similar")
        nengo.Probe(measure.output, label="measure")
    return net


CORPUS = {
    "state_binding": state_binding,
    "assoc_memories": assoc_memories,
    "action_selection": action_selection,
    "transcode_forms": transcode_forms,
}
