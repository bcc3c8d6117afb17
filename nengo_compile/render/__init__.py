"""Stage 6, render: the lowered IR becomes Python source through Jinja.

One `Environment`, configured here, with `StrictUndefined`. Templates only
place values the IR already holds; the filters below are the only way text
from the user (labels, file names) reaches the generated code:

``pystr``
    a Python string literal (``ascii()``), safe for any label;
``comment``
    text for a ``#`` comment: one line, ASCII, no control characters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from .. import ir
from .runtime import runtime_source

TEMPLATES_PACKAGE = Path(__file__).resolve().parent.parent / "templates"  # installed wheel
TEMPLATES_SOURCE = Path(__file__).resolve().parent.parent.parent / "templates"  # checkout


def templates_dir() -> Path:
    for path in (TEMPLATES_PACKAGE, TEMPLATES_SOURCE):
        if (path / "module.py.j2").is_file():
            return path
    raise FileNotFoundError(
        "nengo-compile's templates are missing; looked in "
        f"{TEMPLATES_PACKAGE} and {TEMPLATES_SOURCE}"
    )


def pystr(text) -> str:
    """A Python string literal for any text: ASCII only, fully escaped.

    Double-quoted unless the text holds double quotes and no single ones
    (the quote choice ``ruff format`` makes).
    """
    escapes = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch in escapes:
            out.append(escapes[ch])
        elif 32 <= code < 127:
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    body = "".join(out)
    quote = "'" if '"' in body and "'" not in body else '"'
    return quote + body.replace(quote, "\\" + quote) + quote


def comment(text, limit: int = 100) -> str:
    """Text that is safe inside a ``#`` comment: one ASCII line."""
    text = ascii(str(text))[1:-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def doc(text, limit: int = 100) -> str:
    """Text that is safe inside a triple-quoted docstring."""
    return comment(text, limit).replace("\\", "\\\\").replace('"', '\\"')


def pyfloat(value) -> str:
    """A float literal that reads back exactly (``float('inf')`` for infinities)."""
    value = float(value)
    if math.isnan(value):
        return 'float("nan")'
    if math.isinf(value):
        return 'float("inf")' if value > 0 else '-float("inf")'
    return repr(value)


def pytuple(values) -> str:
    """A tuple literal as ``ruff format`` writes it: ``()``, ``(1,)``, ``(1, 2)``."""
    items = [str(v) for v in values]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def pylist(values) -> str:
    """A list literal of names and numbers: ``[batch, 3, 2]``."""
    return "[" + ", ".join(str(v) for v in values) + "]"


def const(c: ir.Const) -> str:
    """An inline scalar, or the parameter holding the values."""
    return pyfloat(c.value) if c.is_scalar else f'p["{c.param}"]'


class TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates, kept between runs in Jinja's private
    per-user temporary folder: a process's first render then loads them
    instead of compiling every template (50 ms). Only a speed-up: a cache
    that cannot be written is skipped."""

    def dump_bytecode(self, bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> TemplateCache | None:
    try:
        return TemplateCache()
    except (RuntimeError, OSError):  # no safe temporary folder: compile each time
        return None


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(
        pystr=pystr,
        comment=comment,
        doc=doc,
        pyfloat=pyfloat,
        pytuple=pytuple,
        pylist=pylist,
        const=const,
    )
    return env


def _tidy(body: str) -> str:
    """A group's body without blank lines or trailing spaces."""
    return "\n".join(line.rstrip() for line in body.splitlines() if line.strip())


#: the model's tables, as its ``Model`` class holds them for the runtime
TABLES = (
    "DT",
    "SEED",
    "DTYPE",
    "PARAMS_FILE",
    "PROBES",
    "PROBE_SOURCES",
    "PROBE_PERIODS",
    "HOOKS",
    "INPUTS",
    "RANDOM_GROUPS",
    "NO_XLA_GROUPS",
    "BLOCKS",
    "LOOP_SHAPES",
    "PARAMS",
    "STUBS",
    "TRAINABLE",
)


#: operators named in a group's comment (the rest are counted)
SOURCES_SHOWN = 6


@dataclass(frozen=True)
class ProbeRead:
    """What the template places for one probe: the access it reads, or (a
    probe of a constant) the size and value to fill; and its shape."""

    name: str
    shape: tuple  # ("batch", *shape): the reshape of one step's value
    access: ir.Access | None = None
    size: int = 0
    const: ir.Const | None = None


def _probe_read(probe: ir.Probe, program: ir.Program) -> ProbeRead:
    shape = ("batch", *probe.shape)
    if isinstance(probe.read, ir.Access):
        return ProbeRead(probe.name, shape, access=probe.read)
    size = program.params[probe.read.param].size if probe.read.param else 1
    return ProbeRead(probe.name, shape, size=size, const=probe.read)


def render(program: ir.Program, module_name: str, params_file: str, runtime: str = "paste") -> str:
    """The generated module's source; ``runtime`` places the runtime's code
    (``"paste"``: copied into the module; ``"import"``: imported from
    nengo-compile, which must then be installed where the module runs)."""
    env = environment()
    bodies = [
        _tidy(env.get_template(f"ops/{group.template}").render(g=group, program=program))
        for group in program.groups
    ]
    # set by each group's op kind: draws random numbers (not portable to
    # TFLite or ONNX); has an operation without an XLA kernel
    random_groups = [f"group {g.index}: {g.title}" for g in program.groups if g.random]
    # each group's comment: its first operators, and how many more
    notes = [
        [*g.sources[:SOURCES_SHOWN]]
        + (
            [f"... and {len(g.sources) - SOURCES_SHOWN} more"]
            if len(g.sources) > SOURCES_SHOWN
            else []
        )
        for g in program.groups
    ]
    no_xla_groups = [f"group {g.index}: {g.title}" for g in program.groups if g.no_xla]
    return env.get_template("module.py.j2").render(
        program=program,
        bodies=bodies,
        notes=notes,
        probe_reads=[_probe_read(pr, program) for pr in program.probes],
        random_groups=random_groups,
        no_xla_groups=no_xla_groups,
        module_name=module_name,
        params_file=params_file,
        block_names=[b.name for b in program.blocks],
        runtime=runtime_source(runtime),
        params_table=[
            (name, pytuple(array.shape), array.dtype.name)
            for name, array in sorted(program.params.items())
        ],
        table_names=TABLES,
    )
