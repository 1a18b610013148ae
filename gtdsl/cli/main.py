"""``gtdsl`` subcommands and their exit statuses: 0 success, 1 errors in the program, 2 bad
usage or unreadable input, 3 an internal error in gtdsl (GT9001: any exception escaping a
command is a bug; its traceback only under ``GTDSL_LOG=debug``), 130 interrupted."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from gtdsl._version import __version__
from gtdsl.diagnostics import (
    CODES, Diagnostic, GtdslError, InternalError, render_json, render_text,
)
from gtdsl.diagnostics.explain import explanation
from gtdsl.driver import check_file, emit
from gtdsl.syntax.dump import dump_ast

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
MAX_NEW_TOKENS, MAX_BEAMS = 100_000, 1024  # `gtdsl generate`: beyond these, a typo


class _UsageError(Exception):
    pass


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, which asks for the terminal's width only when it formats:
    argparse makes one for each argument added, to check it, and the width would import
    shutil (and bz2, lzma, ...) for a command that prints no help."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        self._sized = width is not None
        self._max_wanted = max_help_position
        super().__init__(prog, indent_increment, max_help_position, 80 if width is None
                         else width)

    def format_help(self) -> str:
        if not self._sized:  # as argparse.HelpFormatter sizes itself when given no width
            import shutil

            self._sized = True
            self._width = shutil.get_terminal_size().columns - 2
            self._max_help_position = min(self._max_wanted, max(self._width - 20,
                                                                self._indent_increment * 2))
        return super().format_help()


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised (and rendered as GT0906) instead of printed."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(**kwargs)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _build_parser() -> _Parser:
    parser = _Parser(prog="gtdsl", description="The gtdsl tensor language.")
    parser.add_argument("--version", action="version", version=f"gtdsl {__version__}")
    # prog: what argparse would format from the usage so far, without a formatter's width
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                prog=parser.prog)
    check = sub.add_parser("check", help="check .gt files, and the @gtdsl.jit functions of "
                           ".py files, without running them")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="diagnostics as text (default) or a JSON array on stdout")
    check.add_argument("--types", action="store_true",
                       help="print every function's checked signature, one a line")
    comp = sub.add_parser("compile", help="print a function's AST, typed program or IR")
    comp.add_argument("file", metavar="FILE")
    comp.add_argument("--fn", required=True, metavar="NAME", help="the function to show")
    comp.add_argument("--emit", choices=("ast", "typed", "ir", "torch", "triton", "cubin"),
                      default="typed", help="what to print (default: typed); torch: the "
                      "generated Python; triton: the launch plan, kernels and host code; "
                      "cubin: each Triton kernel compiled for --arch, with its registers, "
                      "spills and shared memory")
    comp.add_argument("--backend", choices=("torch", "triton", "interpret"), default=None,
                      help="with --emit ir: the IR after this backend's pass (triton: fused "
                      "ops as kernel eqns; default: the checked IR, which torch and "
                      "interpret run as it is)")
    comp.add_argument("--arch", metavar="SM", help="with --emit cubin: the GPU target, "
                      "sm_80, sm_86, sm_89 or sm_90 (default sm_90)")
    comp.add_argument("--size", action="append", default=[], metavar="NAME=N",
                      help="with --emit cubin: a size variable's value (others as gtdsl run "
                      "draws them: 4)")
    comp.add_argument("--format", choices=("text", "json"), default="text",
                      help="with --emit cubin: a table (default) or a JSON list")
    comp.add_argument("--allow-spills", action="store_true",
                      help="with --emit cubin: exit 0 even when a kernel spills registers")
    comp.add_argument("--backward", action="store_true",
                      help="with --emit cubin: also the kernels a training step adds (the "
                      "backward kernels, the forward that saves for them)")
    run = sub.add_parser("run", help="run one function of a .gt file and summarize its result")
    _function_arguments(run, "run", "a parameter: a type (f32[4,10]: random values), a tensor "
                        "file (.safetensors[:KEY], .pt, .npy) or a number; others are drawn "
                        "from their declared types", "the value of a size variable (default 4)")
    run.add_argument("--backend", choices=("auto", "torch", "triton", "interpret"),
                     default="auto")
    exp = sub.add_parser("export", help="write one function of a .gt file as a torch.export "
                         "program, its dims dynamic where its types have size variables")
    _function_arguments(exp, "export", "an example argument, as gtdsl run takes it (a type, a "
                        "tensor file or a number); tensors are the program's inputs, structs "
                        "and numbers its constants",
                        "the example value of a size variable (default 4)")
    exp.add_argument("-o", "--output", required=True, metavar="OUT.pt2",
                     help="the file to write (torch.export.save; torch.export.load reads it)")
    exp.add_argument("--aoti", action="store_true",
                     help="write an AOTInductor package instead "
                     "(torch._inductor.aoti_load_package loads it; needs a C++ compiler)")
    srv = sub.add_parser("serve", help="serve a model folder over HTTP with OpenAI's API "
                         "(/v1/embeddings, /v1/completions); needs gtdsl[serve]")
    srv.add_argument("model", metavar="MODEL_DIR",
                     help="a BERT or RoBERTa folder (embeddings), a GPT-2 or T5 folder "
                     "(completions), or all-MiniLM-L6-v2")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on "
                     "(default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    srv.add_argument("--max-batch", type=int, default=32, metavar="N",
                     help="texts or prompts per model call (default 32)")
    srv.add_argument("--max-wait-ms", type=float, default=5.0, metavar="MS",
                     help="how long a batch waits for more requests (default 5)")
    srv.add_argument("--max-queue", type=int, default=256, metavar="N",
                     help="queued requests before the server answers 503 (default 256)")
    srv.add_argument("--max-request-bytes", type=int, default=1_000_000, metavar="N",
                     help="largest request body (default 1000000; larger ones get 413)")
    srv.add_argument("--max-prompt-tokens", type=int, default=512, metavar="N",
                     help="longest completion prompt, in tokens (default 512)")
    embed = sub.add_parser("embed", help="sentence embeddings from a BERT model folder")
    embed.add_argument("model", metavar="MODEL_DIR",
                       help="a Hugging Face-layout folder, or all-MiniLM-L6-v2 (the installed "
                       "MiniLM package)")
    embed.add_argument("texts", nargs="+", metavar="TEXT")
    embed.add_argument("--format", choices=("text", "json"), default="text",
                       help="json: a list of vectors on standard output")
    gen = sub.add_parser("generate", help="continue a prompt with a GPT-2 folder, or "
                         "answer an input with a T5 folder")
    gen.add_argument("model", metavar="MODEL_DIR")
    gen.add_argument("prompt", metavar="PROMPT")
    gen.add_argument("--max-new-tokens", type=int, default=20, metavar="N")
    gen.add_argument("--beams", type=int, default=1, metavar="K",
                     help="beam search with K beams (default 1: greedy decoding or sampling)")
    gen.add_argument("--do-sample", action=argparse.BooleanOptionalAction, default=None,
                     help="sample the tokens (default: the folder's generation_config.json, "
                     "else greedy)")
    gen.add_argument("--temperature", type=float, default=None, metavar="T",
                     help="sampling: divide the logits by T")
    gen.add_argument("--top-k", type=int, default=None, metavar="K",
                     help="sampling: draw from the K most likely tokens (0: all; default 50)")
    gen.add_argument("--top-p", type=float, default=None, metavar="P",
                     help="sampling: draw from the most likely tokens holding P of the "
                     "probability")
    gen.add_argument("--repetition-penalty", type=float, default=None, metavar="R",
                     help="divide the scores of tokens already in the text by R")
    gen.add_argument("--no-repeat-ngram-size", type=int, default=None, metavar="N",
                     help="never repeat an N-gram")
    gen.add_argument("--min-new-tokens", type=int, default=None, metavar="N",
                     help="no end token before N new tokens")
    gen.add_argument("--num-return-sequences", type=int, default=None, metavar="N",
                     help="N answers (sampling, or beam search with N <= K beams), each on "
                     "its own lines")
    gen.add_argument("--seed", type=int, default=None, metavar="S",
                     help="seed the sampling, for the same answer every run")
    gen.add_argument("--stream", action="store_true",
                     help="print the text as it is generated (one answer, no beams)")
    sub.add_parser("bench", help="run the benchmark suite (from a source checkout); "
                   "`gtdsl bench --help` for its options", add_help=False)
    explain = sub.add_parser("explain", help="explain a diagnostic code, e.g. GT0003")
    explain.add_argument("code", metavar="CODE")
    return parser


def _function_arguments(p: argparse.ArgumentParser, verb: str, arg_help: str,
                        size_help: str) -> None:
    """The file, function and argument flags ``gtdsl run`` and ``gtdsl export`` share."""
    p.add_argument("file", metavar="FILE")
    p.add_argument("--fn", required=True, metavar="NAME", help=f"the function to {verb}")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help=arg_help)
    p.add_argument("--size", action="append", default=[], metavar="NAME=N", help=size_help)
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs (default 0)")
    p.add_argument("--allow-python", action="append", default=[], metavar="NAME",
                   help="also let the file use this Python function or value, by full "
                   "dotted name (operator.neg); whole modules cannot be allowed")


def _usage(message: str, out: TextIO) -> int:
    diag = Diagnostic("GT0906", message, help="run `gtdsl --help` for the commands and options")
    out.write(render_text(diag))
    return EXIT_USAGE


def run_check(files: Sequence[str], fmt: str, out: TextIO, err: TextIO,
              types: bool = False) -> int:
    diagnostics: list[Diagnostic] = []
    unreadable = False
    signatures: list[str] = []
    for name in files:
        if name.endswith(".py"):  # its @gtdsl.jit functions, read without running the file
            from gtdsl.pyfile import check_python_file

            py = check_python_file(name)
            diagnostics += py.diagnostics
            unreadable |= py.unreadable
            if types:
                signatures += list(py.signatures)
            continue
        checked = check_file(name, is_path=True, ir=False)  # diagnostics alone
        diagnostics += checked.diagnostics
        unreadable |= checked.unreadable
        if types and checked.result is not None:
            signatures += [sig for _, sig in checked.result.signatures]
    errors = sum(d.is_error for d in diagnostics)
    if fmt == "json":
        out.write(render_json(diagnostics) + "\n")
    else:
        for diag in diagnostics:
            err.write(render_text(diag) + "\n")
        for sig in signatures:
            out.write(sig + "\n")
        if not types:
            noun = "file" if len(files) == 1 else "files"
            if errors:
                out.write(f"found {errors} error{'s' * (errors != 1)} in {len(files)} {noun}\n")
            else:
                out.write(f"ok: {len(files)} {noun} checked, no errors\n")
    if unreadable:
        return EXIT_USAGE
    return EXIT_ERRORS if errors else EXIT_OK


def run_compile(path: str, fn: str, what: str, out: TextIO, err: TextIO,
                backend: str | None = None) -> int:
    if backend is not None and what != "ir":
        return _usage(f"--backend goes with --emit ir, not --emit {what}", err)
    checked = check_file(path, is_path=True)
    for diag in checked.diagnostics:
        err.write(render_text(diag) + "\n")
    if checked.unreadable:
        return EXIT_USAGE
    if checked.result is None:
        return EXIT_ERRORS
    names = list(checked.result.module.functions)
    if fn not in names:
        import difflib

        close = difflib.get_close_matches(fn, names, n=1)
        diag = Diagnostic("GT0906", f"`{path}` has no function `{fn}`", help=(
            f"did you mean `{close[0]}`?" if close else
            f"its functions are: {', '.join(names) or 'none'}"))
        err.write(render_text(diag) + "\n")
        return EXIT_USAGE
    if what == "ast":
        decl = checked.result.module.functions[fn].decl
        out.write(dump_ast(decl) + "\n")
    elif what == "torch":
        if checked.errors:
            return EXIT_ERRORS
        from gtdsl.driver import load

        out.write(load(path).functions[fn].source())
    elif what == "triton":
        if checked.errors:
            return EXIT_ERRORS
        from gtdsl.driver import load

        out.write(load(path, backend="triton").functions[fn].triton_source())
    else:
        out.write((emit(checked.result, fn, what, backend or "torch") or "") + "\n")
    return EXIT_ERRORS if checked.errors else EXIT_OK


def run_embed(model: str, texts: Sequence[str], fmt: str, out: TextIO, err: TextIO) -> int:
    from gtdsl.diagnostics import GtdslError
    from gtdsl.models.bert import Bert

    try:
        vectors = Bert(model).encode(list(texts))
    except GtdslError as e:
        for d in e.diagnostics:
            err.write(render_text(d) + "\n")
        return EXIT_USAGE if all(d.code.startswith("GT09") for d in e.diagnostics) else \
            EXIT_ERRORS
    if fmt == "json":
        import json

        out.write(json.dumps([[round(float(x), 7) for x in v] for v in vectors.tolist()]) +
                  "\n")
    else:
        for text, v in zip(texts, vectors.tolist()):
            head = ", ".join(f"{x:.4f}" for x in v[:6])
            out.write(f"{text[:40]!r}: [{head}, ...] ({len(v)} dims)\n")
    return EXIT_OK


def run_serve(args: Any, err: TextIO) -> int:
    from gtdsl.diagnostics import GtdslError

    if not 0 <= args.port < 65536:
        return _usage("--port must be from 0 to 65535", err)
    if args.max_batch < 1 or args.max_queue < 1 or args.max_request_bytes < 1 or \
            args.max_prompt_tokens < 1 or not 0 <= args.max_wait_ms <= 10_000:
        return _usage("--max-batch, --max-queue, --max-request-bytes and --max-prompt-tokens "
                      "must be at least 1, and --max-wait-ms from 0 to 10000", err)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return _usage("`gtdsl serve` needs Starlette and uvicorn: pip install 'gtdsl[serve]'",
                      err)
    from gtdsl.serving import Limits, create_app

    limits = Limits(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                    max_queue=args.max_queue, max_request_bytes=args.max_request_bytes,
                    max_prompt_tokens=args.max_prompt_tokens)
    try:
        app = create_app(args.model, limits)
    except GtdslError as e:
        for d in e.diagnostics:
            err.write(render_text(d) + "\n")
        return EXIT_USAGE if all(d.code.startswith("GT09") for d in e.diagnostics) else \
            EXIT_ERRORS
    err.write(f"serving {app.state.served.name} ({app.state.served.task}) on "
              f"http://{args.host}:{args.port}\n")
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                    limit_concurrency=args.max_queue + 64)
    except OSError as e:  # the port is taken, the address is not this machine's
        return _usage(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}", err)
    except SystemExit as e:  # uvicorn exits 1 when it cannot bind
        if e.code:
            return _usage(f"cannot listen on {args.host}:{args.port}", err)
    return EXIT_OK


GENERATE_SETTINGS = ("do_sample", "temperature", "top_k", "top_p", "repetition_penalty",
                     "no_repeat_ngram_size", "min_new_tokens", "num_return_sequences")


def run_generate(model: str, prompt: str, n: int, beams: int, out: TextIO, err: TextIO,
                 settings: dict[str, Any] | None = None, seed: int | None = None,
                 stream: bool = False) -> int:
    from pathlib import Path

    import torch

    from gtdsl.models.search import SETTINGS

    from gtdsl.diagnostics import GtdslError
    from gtdsl.models.gpt2 import GPT2
    from gtdsl.models.t5 import T5

    if n < 1 or beams < 1:
        return _usage("--max-new-tokens and --beams must be at least 1", err)
    if n > MAX_NEW_TOKENS or beams > MAX_BEAMS:
        return _usage(f"--max-new-tokens is at most {MAX_NEW_TOKENS} and --beams at most "
                      f"{MAX_BEAMS}", err)
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    for key, value in settings.items():
        ok, what, _ = SETTINGS[key]
        if not ok(value):
            return _usage(f"--{key.replace('_', '-')} must be {what}, not {value}", err)
    if settings.get("num_return_sequences", 1) > MAX_BEAMS:
        return _usage(f"--num-return-sequences is at most {MAX_BEAMS}", err)
    if stream and (beams > 1 or settings.get("num_return_sequences", 1) > 1):
        return _usage("--stream shows one answer as it is generated: it goes without --beams "
                      "and --num-return-sequences", err)
    if seed is not None:
        if not 0 <= seed < 2 ** 63:
            return _usage("--seed must be an integer from 0 to 2**63 - 1", err)
        settings["generator"] = torch.Generator().manual_seed(seed)
    if not Path(model).is_dir():
        err.write(render_text(Diagnostic("GT0909", f"`{model}` is not a model folder",
                                         help="give a folder holding config.json, "
                                         "model.safetensors and tokenizer.json",
                                         path=model)) + "\n")
        return EXIT_USAGE
    from gtdsl.models.config import model_type

    try:  # read as the loaders read it: a regular file, size-capped, a JSON object
        kind = model_type(model) or "gpt2"
    except GtdslError as e:
        for d in e.diagnostics:
            err.write(render_text(d) + "\n")
        return EXIT_USAGE
    if kind not in ("gpt2", "t5", "mt5"):
        err.write(render_text(Diagnostic(
            "GT0909", f"`gtdsl generate` runs GPT-2 and T5 folders; this config.json's "
            f"model_type is {kind!r}", help="give a folder saved from a GPT-2 or T5 model",
            path=str(Path(model) / "config.json"))) + "\n")
        return EXIT_USAGE
    def write(piece: str) -> None:
        out.write(piece)
        out.flush()
    try:
        texts = (GPT2 if kind == "gpt2" else T5)(model).generate_texts(
            prompt, n, beams, stream=write if stream else None, **settings)
    except GtdslError as e:
        if stream:
            out.write("\n")
        for d in e.diagnostics:
            err.write(render_text(d) + "\n")
        return EXIT_USAGE if all(d.code.startswith("GT09") for d in e.diagnostics) else \
            EXIT_ERRORS
    out.write("\n" if stream else "".join(text + "\n" for text in texts))
    return EXIT_OK


def run_bench(argv: Sequence[str], err: TextIO) -> int:
    """The suite lives in the checkout's ``benchmarks/`` (it is not part of the wheel)."""
    from gtdsl._resources import checkout_root

    root = checkout_root()
    if not (root / "benchmarks" / "suite.py").is_file():
        err.write(render_text(Diagnostic(
            "GT0906", "the benchmark suite is not installed with gtdsl",
            help="run it from a source checkout: python -m benchmarks")))
        return EXIT_USAGE
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.suite import main as bench_main

    try:
        return bench_main(list(argv))
    except SystemExit as e:  # argparse's --help and usage errors
        return int(e.code or 0)


def run_explain(code: str, out: TextIO, err: TextIO) -> int:
    found = explanation(code)
    if found is None:
        import difflib

        wanted = code.upper()
        # a mistyped code usually keeps its stage digit: suggest from that stage first
        stage = [c for c in CODES if len(wanted) > 2 and c[:3] == wanted[:3]]
        close = difflib.get_close_matches(wanted, stage, n=3) or difflib.get_close_matches(
            wanted, CODES, n=3)
        diag = Diagnostic(
            "GT0907", f"`{code}` is not a gtdsl diagnostic code",
            help=(f"did you mean {', '.join(close)}?" if close
                  else "codes look like GT0003; every error message shows its code"),
        )
        err.write(render_text(diag))
        return EXIT_USAGE
    _info, text = found
    out.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show `—` gets `?`
        if out is None and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    program = argv is None and out is None and err is None  # the `gtdsl` command itself
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    # The `gtdsl` command that only reads and checks ends the process itself (`_exit_now`):
    # the garbage collector stays off for the whole run. Every object it makes lives until
    # the end, so a collection frees next to nothing and costs a walk over all of them (the
    # largest right after the checker resumes the collector, over all it made meanwhile).
    # Called in-process (arguments given), the collector is left as it is.
    paused = program and gc.isenabled() and _front_end_only(argv)
    if paused:
        gc.disable()
    parser = _build_parser()
    try:
        code = _dispatch(parser, argv, out, err)
        if program and _front_end_only(argv):
            _exit_now(code)
        return code
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
    except GtdslError as e:  # a diagnostic no command caught on its own: still the user's
        for d in e.diagnostics:
            err.write(render_text(d) + "\n")
        return EXIT_USAGE if all(d.code.startswith("GT09") for d in e.diagnostics) else \
            EXIT_ERRORS
    except BrokenPipeError:  # `gtdsl ... | head`: the reader left; nothing more to say
        if out is sys.stdout:
            _silence_stdout()
        return EXIT_ERRORS
    except Exception as e:  # an escaping exception is a bug in gtdsl, whatever its kind
        return _internal_error(e, argv, out, err)
    finally:  # reached only where the process did not end at `_exit_now`
        if paused:
            gc.enable()


def _dispatch(parser: _Parser, argv: list[str], out: TextIO, err: TextIO) -> int:
    if argv[:1] == ["bench"]:
        return run_bench(argv[1:], err)
    try:
        args = parser.parse_args(argv)
    except _UsageError as problem:
        return _usage(str(problem), err)
    except SystemExit as exit_:  # --help and --version print and exit 0
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help(out)
        return EXIT_USAGE
    if args.command == "check":
        return run_check(args.files, args.format, out, err, args.types)
    if args.command == "compile":
        if args.emit == "cubin":
            from gtdsl.cli.aot import run_cubin

            if args.backend is not None:
                return _usage("--backend goes with --emit ir, not --emit cubin", err)

            return run_cubin(args.file, args.fn, args.arch, args.size, args.format,
                             args.allow_spills, out, err, args.backward)
        cubin_only = [o for o, v in (("--arch", args.arch), ("--size", args.size),
                                     ("--format", args.format != "text"),
                                     ("--allow-spills", args.allow_spills),
                                     ("--backward", args.backward)) if v]
        if cubin_only:
            return _usage(f"{cubin_only[0]} goes with --emit cubin, not --emit {args.emit}",
                          err)
        return run_compile(args.file, args.fn, args.emit, out, err, args.backend)
    if args.command == "generate":
        settings = {k: getattr(args, k) for k in GENERATE_SETTINGS}
        return run_generate(args.model, args.prompt, args.max_new_tokens, args.beams, out,
                            err, settings, args.seed, args.stream)
    if args.command == "embed":
        return run_embed(args.model, args.texts, args.format, out, err)
    if args.command == "serve":
        return run_serve(args, err)
    if args.command == "export":
        from gtdsl.cli.export import export_function

        return export_function(args.file, args.fn, args.arg, args.size, args.seed,
                               args.allow_python, args.output, args.aoti, out, err)
    if args.command == "run":
        from gtdsl.cli.run import run_function

        return run_function(args.file, args.fn, args.arg, args.size, args.backend,
                            args.seed, args.allow_python, out, err)
    return run_explain(args.code, out, err)


def _front_end_only(argv: Sequence[str]) -> bool:
    """The command only read, parsed and checked (``check``, ``compile --emit
    ast|typed|ir``) or printed (``explain``, ``--version``, ``--help``): nothing it loaded
    needs cleaning up."""
    if "torch" in sys.modules or not argv:
        return False
    if argv[0] in ("check", "explain", "--version", "--help", "-h"):
        return True
    return argv[0] == "compile" and not any(
        a in ("torch", "triton", "cubin") or a.startswith("--emit=") and a[7:] in (
            "torch", "triton", "cubin") for a in argv)


def _exit_now(code: int) -> None:
    """End the process with ``code`` as soon as its output is out: freeing a large checked
    program object by object at interpreter exit takes longer than checking it did (mypy ends
    the same way). A reader that left (BrokenPipeError) is handled as for any write; where
    the output cannot be flushed otherwise, the normal exit path reports it."""
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError):
        return
    os._exit(code)


def _input_path(argv: Sequence[str]) -> str | None:
    """What the command reads: its first operand that is no option and no option's value."""
    takes_value = {"--fn", "--arg", "--size", "--backend", "--seed", "--allow-python",
                   "--format", "--emit", "--max-new-tokens", "--beams", "--arch"}
    skip = True  # the command's name
    for a in argv:
        if skip:
            skip = False
            continue
        if a in takes_value:
            skip = True
        elif not a.startswith("-"):
            return a
    return None


def _internal_error(exc: Exception, argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """GT9001: what went wrong and how to report it; the traceback under GTDSL_LOG=debug.
    ``gtdsl check --format json`` gets it in its JSON array on standard output."""
    import platform
    import traceback
    from pathlib import Path

    from gtdsl._config import load_config

    if isinstance(exc, InternalError):
        what = exc.what
    else:
        text = str(exc).strip()
        what = type(exc).__name__ + (f": {text.splitlines()[0]}" if text else "")
    if len(what) > 300:
        what = what[:300] + "..."
    frames = traceback.extract_tb(exc.__traceback__)
    notes = []
    if frames:
        last = frames[-1]
        notes.append(f"raised in {last.name} ({Path(last.filename).name}:{last.lineno})")
    versions = f"gtdsl {__version__}, Python {platform.python_version()}"
    torch_version = _torch_version()
    if torch_version:
        versions += f", torch {torch_version}"
    notes.append(f"versions: {versions}")
    notes.append("command: gtdsl " + " ".join(argv))
    debug = "debug" in load_config().log
    diag = Diagnostic(
        "GT9001", f"internal error in gtdsl: {what}", notes=tuple(notes),
        help="this is a bug in gtdsl, not in your input: please report it with the command, "
        "the files it reads and this message" + (
            "" if debug else "; run it again with GTDSL_LOG=debug to add the Python traceback"),
        path=_input_path(argv))
    if debug:
        err.write("".join(traceback.format_exception(exc)))
    if argv[:1] == ["check"] and ("--format=json" in argv or any(
            a == "--format" and b == "json" for a, b in zip(argv, argv[1:]))):
        out.write(render_json([diag]) + "\n")
    else:
        err.write(render_text(diag))
    return EXIT_INTERNAL


def _torch_version() -> str | None:
    """The installed torch's version, without importing torch when nothing has yet."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return str(getattr(torch, "__version__", "")) or None
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:
        return None


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so Python's flush at exit does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
