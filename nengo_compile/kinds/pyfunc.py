"""SimPyFunc: a Node or connection function, as TensorFlow or a hook."""

from __future__ import annotations

from dataclasses import dataclass

from nengo.builder.operator import SimPyFunc

from .. import ir
from ..ir import AccessRequest
from ..translate import emit_translation
from .base import OpKind, const_values, register, seg


@dataclass(frozen=True)
class HookCall(ir.Payload):
    """A call of a Python hook: ``self._hook(name, t_arg, x_arg, batch)``;
    ``reason``: why it is not TensorFlow."""

    hook: ir.Hook
    reason: str
    t_arg: str  # "t64" or "None"
    x_arg: str  # "x" or "None"

    @classmethod
    def of(cls, hook: ir.Hook, reason: str) -> HookCall:
        return cls(hook, reason, "t64" if hook.takes_t else "None", "x" if hook.size_in else "None")


@dataclass(frozen=True)
class NodeTF(ir.Payload):
    """A translated function: its statements (`nengo_compile.translate`), the
    source line for a comment, its state (per variable: name, read role,
    write role, shape code or None, TF dtype), and the message of the
    finiteness check (made where ``check_finite``)."""

    lines: tuple
    source: str
    state: tuple
    hook: ir.Hook
    check_finite: bool
    finite_message: str


@register(SimPyFunc)
class PyFuncKind(OpKind):
    """SimPyFunc: a Python callable, translated into TF operations when
    `nengo_compile.translate` can, else kept as a named hook.

    A translated function reads its input ``x`` (if it uses it) and the state
    of its object (attributes it assigns, as their own signals), and sets its
    output and that state.
    """

    name = "pyfunc"
    template = "pyfunc.py.j2"
    rank = 4

    def key(self, op, ctx):
        return ("pyfunc", "single")

    def translation(self, op, ctx):
        """The `Translated` function, or None (with the reason) if it stays a hook."""
        if ctx.translation is None:
            return None, ""
        return ctx.translation.of(op)

    def accesses(self, ops, ctx):
        (op,) = ops
        translated, _ = self.translation(op, ctx)
        requests = []
        if op.output is not None:
            requests.append(AccessRequest("output", "set", (seg(op.output),)))
        reads_x = translated is None or translated.uses_x
        if op.x is not None and not ctx.is_const(op.x) and reads_x:
            requests.append(AccessRequest("x", "read", (seg(op.x),)))
        for k, var in enumerate(translated.state if translated else ()):
            segments = (seg(ctx.translation.signals[op, var.attr]),)
            requests.append(AccessRequest(f"state{k}", "read", segments))
            requests.append(AccessRequest(f"state{k}_new", "set", segments))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        hook = ctx.hooks[op]
        translated, reason = self.translation(op, ctx)
        reads = {k: v.access for k, v in acc.items() if v.access.mode == "read"}
        writes = {k: v.access for k, v in acc.items() if v.access.mode != "read"}
        if translated is not None:
            emitted = emit_translation(translated, params, "fn", op.output.size)
            return ir.Group(
                index,
                self.name,
                "node_tf.py.j2",
                f"{hook.name!r} translated to TensorFlow",
                (ctx.names(op),),
                reads=reads,
                writes={k.replace("_new", ""): v for k, v in writes.items()},
                values=NodeTF(
                    lines=emitted.lines,
                    source=translated.source,
                    state=emitted.state,
                    hook=hook,
                    check_finite=ctx.check_finite and op.output is not None,
                    finite_message=f"Function {hook.label} returned non-finite value",
                ),
            )
        consts = {}
        if op.x is not None and "x" not in acc:
            consts["x"] = ir.Const(param=params.add("hook_x", const_values(op.x).reshape(-1)))
        return ir.Group(
            index,
            self.name,
            self.template,
            f"hook {hook.name!r}",
            (ctx.names(op),),
            reads=reads,
            writes=writes,
            consts=consts,
            values=HookCall.of(hook, reason),
        )
