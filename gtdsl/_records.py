"""``@record``: dataclasses that cost almost nothing to define.

``@dataclass(frozen=True, slots=True)`` compiles six or seven functions for each class
(``exec``, about 40 µs each), builds the class twice and asks ``inspect`` for a docstring:
about 0.6 ms a class, which for the ~90 classes of the front end was half the start-up of
``gtdsl check``. A ``record`` behaves as that dataclass does: the same ``__init__``
(keywords, defaults, ``default_factory``, ``__post_init__``; faster, setting the slots
through their descriptors), ``__eq__`` and ``__hash__`` (the same tuples of the compared
fields, the same code), ``__repr__``, frozen ``__setattr__``/``__delattr__`` raising
``dataclasses.FrozenInstanceError``, ``__slots__``, ``__match_args__``, pickling and
copying, the generated ``__doc__``. Nothing is compiled per class: each generated method
comes from a template, one per number of fields, shipped compiled in
``gtdsl._record_templates``, whose placeholder names are renamed in each class's copy of
the code (``CodeType.replace``); the class is built a second time only for its slots, as
dataclasses do.

``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work on records: a
record's ``__dataclass_fields__`` is made on first use (importing ``dataclasses`` then, which
the front end does not otherwise need). ``record_fields``, ``field_names``, ``is_record``
and ``replace`` here answer the same without that import.

Not supported (refused with TypeError): ``InitVar`` fields, ``init=False`` or ``kw_only``
fields (and ``KW_ONLY``), a field named ``self``, a ``field()`` without an annotation,
extending a dataclass, frozen and mutable records in one hierarchy (as dataclasses refuse
it); nor are ``order`` and ``unsafe_hash`` offered. Known differences: the methods live in
``gtdsl._record_templates`` (``typing.get_type_hints`` of an ``__init__`` cannot resolve
the class's own names there); defaults are read from the class body, not from plain base
classes; ``__eq__`` compares tuples of fields, as 3.11's dataclasses do (3.13's compare
field by field, so ``nan`` fields differ there).
"""

from __future__ import annotations

import builtins
import sys
from reprlib import recursive_repr
from typing import TYPE_CHECKING, Any, Callable, TypeVar, overload

import gtdsl._record_templates as _record_templates

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_kwargs: Any) -> Any:  # PEP 681: for type checkers only
        return lambda f: f

__all__ = [
    "MISSING", "RecordField", "field", "field_names", "is_record", "record", "record_fields",
    "replace",
]

_T = TypeVar("_T")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # no default (dataclasses.MISSING in __dataclass_fields__)


class _Factory:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY: Any = _Factory()  # the default of a parameter whose field has a default_factory


class RecordField:
    """One field of a record (``record_fields``), as ``dataclasses.Field`` describes one."""

    __slots__ = ("name", "type", "default", "default_factory", "repr", "hash", "compare")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING,
                 repr: bool = True, hash: bool | None = None, compare: bool = True) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name: str = ""
        self.type: Any = None
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.hash = hash
        self.compare = compare

    def __repr__(self) -> str:
        return (f"RecordField(name={self.name!r}, type={self.type!r}, "
                f"default={self.default!r}, default_factory={self.default_factory!r}, "
                f"repr={self.repr!r}, hash={self.hash!r}, compare={self.compare!r})")

    @property
    def hashed(self) -> bool:
        """Part of ``__hash__`` (as in dataclasses: ``hash``, else ``compare``)."""
        return self.compare if self.hash is None else self.hash


@overload
def field(*, default: _T, repr: bool = ..., hash: bool | None = ...,
          compare: bool = ...) -> _T: ...
@overload
def field(*, default_factory: Callable[[], _T], repr: bool = ..., hash: bool | None = ...,
          compare: bool = ...) -> _T: ...
@overload
def field(*, repr: bool = ..., hash: bool | None = ..., compare: bool = ...) -> Any: ...
def field(*, default: Any = MISSING, default_factory: Any = MISSING, repr: bool = True,
          hash: bool | None = None, compare: bool = True) -> Any:
    """A field with options, as ``dataclasses.field`` (``default``, ``default_factory``,
    ``repr``, ``hash``, ``compare``)."""
    return RecordField(default, default_factory, repr, hash, compare)


# ============================================================================ templates
#
# A template is the source of a function ``__create__`` that returns the method, its field
# names written ``_r_f0``, ``_r_f1``... (renamed in each class's copy of the code), its
# parameters ``_r_a0``... (renamed likewise) and what it needs from the class as closure
# variables (``_r_s0``: a slot's setter; ``_r_k0``: a default factory). The templates of
# up to SHIPPED_FIELDS fields without default factories are shipped compiled, as the module
# ``gtdsl._record_templates`` (and its bytecode cache); others are compiled on first use.

SHIPPED_FIELDS = 12
# Generated code sees only the builtins (``hash``, ``NotImplemented``).
_GLOBALS: dict[str, Any] = {"__builtins__": builtins}
_TEMPLATES: dict[tuple[Any, ...], tuple[Callable[..., Any], tuple[Any, ...]]] = {}
_QUALNAMES = sys.version_info >= (3, 11)


def _template(key: tuple[Any, ...]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The function that makes a method from the template for ``key``, and its method's
    ``co_names`` with each placeholder ``_r_f<i>`` replaced by ``i``."""
    found = _TEMPLATES.get(key)
    if found is None:
        make = getattr(_record_templates, _template_name(key), None)
        if make is None:
            space: dict[str, Any] = {}
            exec(_source(key), _GLOBALS, space)
            make = space["__create__"]
        inner = next(c for c in make.__code__.co_consts if hasattr(c, "co_names"))
        found = _TEMPLATES[key] = (make, tuple(
            int(n[4:]) if n.startswith("_r_f") else n for n in inner.co_names))
    return found


def _template_name(key: tuple[Any, ...]) -> str:
    """The name of ``key``'s template in ``gtdsl._record_templates``."""
    if key[0] != "init":
        return f"{key[0]}_{key[1]}"
    _, n, factories, post_init, setters = key
    return (f"init_{n}_{'set' if setters else 'attr'}{'_post' if post_init else ''}"
            + "".join(f"_k{i}" for i in factories))


def _items(items: list[str], column: int) -> str:
    """``a, b, c,`` from ``column`` on, wrapped before the 98th character to lines that
    start at that column."""
    lines, line = [], ""
    for item in items:
        if line and column + len(line) + len(item) + 1 > 96:
            lines.append(line.rstrip())
            line = ""
        line += item + ", "
    lines.append(line.rstrip())
    return ("\n" + " " * column).join(lines)


def _source(key: tuple[Any, ...]) -> str:
    """The template for ``key``: ("eq", n), ("hash", n) or ("init", n, the positions of the
    fields with a default factory, whether to call __post_init__, whether fields are set
    by setters rather than attribute assignment)."""
    kind, n = key[0], key[1]
    if kind == "eq":
        return ("def __create__():\n"
                "    def __eq__(self, other):\n"
                "        if other.__class__ is self.__class__:\n"
                f"            return (({_items([f'self._r_f{i}' for i in range(n)], 21)}) ==\n"
                f"                    ({_items([f'other._r_f{i}' for i in range(n)], 21)}))\n"
                "        return NotImplemented\n"
                "    return __eq__\n")
    if kind == "hash":
        return ("def __create__():\n"
                "    def __hash__(self):\n"
                f"        return hash(({_items([f'self._r_f{i}' for i in range(n)], 21)}))\n"
                "    return __hash__\n")
    _, n, factories, post_init, setters = key
    closure = [f"_r_s{i}" for i in range(n)] if setters else []
    closure += [f"_r_k{i}" for i in factories]
    if factories:
        closure.append("_r_FACTORY")
    lines = []
    for i in range(n):
        value = (f"_r_k{i}() if _r_a{i} is _r_FACTORY else _r_a{i}" if i in factories
                 else f"_r_a{i}")
        lines.append(f"        _r_s{i}(self, {value})\n" if setters
                     else f"        self._r_f{i} = {value}\n")
    if post_init:
        lines.append("        self.__post_init__()\n")
    head = ", ".join(closure)
    if len(head) > 70:  # a hanging indent
        head = "\n        " + _items(closure, 8).rstrip(",")
    params = _items(["self"] + [f"_r_a{i}" for i in range(n)], 17).rstrip(",")
    return (f"def __create__({head}):\n"
            f"    def __init__({params}):\n"
            + ("".join(lines) or "        pass\n") + "    return __init__\n")


def shipped_templates() -> str:
    """The text of ``gtdsl/_record_templates.py``: the templates of up to SHIPPED_FIELDS
    fields, none with a default factory (``write_shipped_templates`` writes it)."""
    keys: list[tuple[Any, ...]] = []
    for n in range(SHIPPED_FIELDS + 1):
        keys += [("eq", n), ("hash", n)]
        keys += [("init", n, (), post_init, setters)
                 for setters in (True, False) for post_init in (False, True)]
    parts = ['"""The templates of the methods of records (``gtdsl._records``), shipped '
             'compiled.\n\nGenerated, do not edit: ``python -c "import gtdsl._records as r; '
             'r.write_shipped_templates()"``.\n"""\n']
    for key in keys:
        parts.append(_source(key).replace("def __create__(", f"def {_template_name(key)}("))
    return "\n\n".join(parts)


def _method(key: tuple[Any, ...], args: list[Any], names: tuple[str, ...],
            varnames: tuple[str, ...] | None, qualname: str) -> Any:
    """The method of template ``key`` with closure ``args``: its placeholders renamed to
    the field ``names`` and its parameters to ``varnames`` (``CodeType.replace``)."""
    make, co_names = _template(key)
    fn = make(*args)
    changes: dict[str, Any] = {"co_names": tuple(
        [n if n.__class__ is str else names[n] for n in co_names])}
    if varnames is not None:
        changes["co_varnames"] = varnames
    if _QUALNAMES:
        changes["co_qualname"] = qualname
    fn.__code__ = fn.__code__.replace(**changes)
    fn.__qualname__ = qualname
    return fn


def _init(cls: type, fields: tuple[RecordField, ...], setters: list[Any] | None,
          post_init: bool) -> Any:
    """``__init__``: each field set by its setter (a slot's ``__set__``, for a frozen class),
    else by ``self.name = value``; then ``__post_init__``."""
    factories = tuple([i for i, f in enumerate(fields) if f.default_factory is not MISSING])
    args = list(setters) if setters is not None else []
    defaults = []
    for f in fields:
        if f.default is not MISSING:
            defaults.append(f.default)
            after = f.name
        elif f.default_factory is not MISSING:
            defaults.append(_FACTORY)
            args.append(f.default_factory)
            after = f.name
        elif defaults:
            raise TypeError(f"non-default argument {f.name!r} follows default argument"
                            + (f" {after!r}" if sys.version_info >= (3, 13) else ""))
    if factories:
        args.append(_FACTORY)
    names = tuple([f.name for f in fields])
    fn = _method(("init", len(fields), factories, post_init, setters is not None), args,
                 names, ("self", *names), f"{cls.__qualname__}.__init__")
    fn.__defaults__ = tuple(defaults) or None
    annotations = {f.name: f.type for f in fields}
    annotations["return"] = None
    fn.__annotations__ = annotations
    return fn


def _eq(cls: type, names: tuple[str, ...]) -> Any:
    """``__eq__`` as dataclasses write it: the tuples of compared fields, same class only."""
    return _method(("eq", len(names)), [], names, None, f"{cls.__qualname__}.__eq__")


def _hash(cls: type, names: tuple[str, ...]) -> Any:
    """``__hash__`` as dataclasses write it: the hash of the tuple of hashed fields."""
    return _method(("hash", len(names)), [], names, None, f"{cls.__qualname__}.__hash__")


def _repr(cls: type, names: tuple[str, ...]) -> Any:
    def __repr__(self: Any) -> str:
        return (self.__class__.__qualname__ + "("
                + ", ".join([f"{name}={getattr(self, name)!r}" for name in names]) + ")")

    __repr__.__qualname__ = f"{cls.__qualname__}.__repr__"
    return recursive_repr()(__repr__)


def _frozen(cls: Any, names: tuple[str, ...]) -> tuple[Any, Any]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    return __setattr__, __delattr__


def _state(names: tuple[str, ...]) -> tuple[Any, Any]:
    """``__getstate__`` and ``__setstate__`` of a frozen slotted record (pickle, copy)."""
    def __getstate__(self: Any) -> list[Any]:
        return [getattr(self, name) for name in names]

    def __setstate__(self: Any, state: list[Any]) -> None:
        for name, value in zip(names, state):
            object.__setattr__(self, name, value)

    return __getstate__, __setstate__


def _signature_doc(name: str, fields: tuple[RecordField, ...]) -> str:
    """The docstring dataclasses give a class without one: its name and signature."""
    parts = []
    for f in fields:
        text = f"{f.name}: {_annotation_text(f.type)}"
        if f.default is not MISSING:
            text += f" = {f.default!r}"
        elif f.default_factory is not MISSING:
            text += " = <factory>"
        parts.append(text)
    return f"{name}({', '.join(parts)})"


def _annotation_text(annotation: Any) -> str:
    """As ``inspect.formatannotation``."""
    if isinstance(annotation, type) and not hasattr(annotation, "__origin__"):
        if annotation.__module__ == "builtins":
            return annotation.__qualname__
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return repr(annotation).replace("typing.", "")


class _MadeOnUse:
    """A class attribute made on first use and then kept in the class: a record's
    ``__doc__`` (its signature, when the class has no docstring), ``__dataclass_fields__``
    and ``__dataclass_params__``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type) -> Any:
        fields: tuple[RecordField, ...] = owner.__record_fields__  # type: ignore[attr-defined]
        value: Any
        if self.name == "__doc__":
            value = _signature_doc(owner.__name__, fields)
        elif self.name == "__dataclass_fields__":
            import dataclasses

            value = {}
            for f in fields:
                made: Any = dataclasses.field(
                    default=dataclasses.MISSING if f.default is MISSING else f.default,
                    default_factory=dataclasses.MISSING if f.default_factory is MISSING
                    else f.default_factory,
                    repr=f.repr, hash=f.hash, compare=f.compare)
                made.name = f.name
                made.type = f.type
                made._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
                if getattr(made, "kw_only", False) is dataclasses.MISSING:
                    made.kw_only = False
                value[f.name] = made
        else:
            import dataclasses

            frozen, eq = owner.__record_params__  # type: ignore[attr-defined]
            probe: Any = dataclasses.dataclass(frozen=frozen, eq=eq)(type("_", (), {}))
            value = probe.__dataclass_params__
        type.__setattr__(owner, self.name, value)
        return value


_FIELDS_ATTRIBUTE = _MadeOnUse("__dataclass_fields__")
_PARAMS_ATTRIBUTE = _MadeOnUse("__dataclass_params__")
_DOC_ATTRIBUTE = _MadeOnUse("__doc__")


# ============================================================================ the decorator


@overload
def record(cls: type[_T], /) -> type[_T]: ...
@overload
def record(*, frozen: bool = ..., slots: bool = ..., eq: bool = ...
           ) -> Callable[[type[_T]], type[_T]]: ...
@dataclass_transform(frozen_default=True, field_specifiers=(field, RecordField))
def record(cls: Any = None, /, *, frozen: bool = True, slots: bool = True,
           eq: bool = True) -> Any:
    """A dataclass, frozen and slotted unless asked otherwise: ``@record`` is
    ``@dataclass(frozen=True, slots=True)``; ``@record(frozen=False, slots=False)`` is
    ``@dataclass``. Fields are declared and given defaults as for dataclasses, with
    ``field`` here (``dataclasses.field`` is accepted too)."""
    def wrap(cls: type) -> type:
        return _process(cls, frozen, slots, eq)

    return wrap if cls is None else wrap(cls)


def _process(cls: type, frozen: bool, slots: bool, eq: bool) -> type:
    own = cls.__dict__
    fields: dict[str, RecordField] = {}
    for base in cls.__mro__[-1:0:-1]:
        inherited = base.__dict__.get("__record_fields__")
        if inherited is not None:
            for f in inherited:
                fields[f.name] = f
            if base.__dict__["__record_params__"][0] != frozen:  # as dataclasses refuse it
                raise TypeError(f"cannot inherit {'' if frozen else 'non-'}frozen record "
                                f"{cls.__name__} from a {'non-' if frozen else ''}frozen one")
        elif "__dataclass_fields__" in base.__dict__:
            raise TypeError(f"record {cls.__name__} cannot extend the dataclass "
                            f"{base.__name__}")
    for name, value in own.items():  # what records would silently ignore: refused
        if isinstance(value, RecordField) and name not in own.get("__annotations__", {}):
            raise TypeError(f"record {cls.__name__}: {name!r} is a field without a type "
                            "annotation")
    annotations = own.get("__annotations__")
    if annotations is None:  # none, or (Python 3.14) made on demand
        annotations = getattr(cls, "__annotations__", None) or {}
    for name, annotation in annotations.items():
        if annotation.__class__ is not str or "Var" in annotation:  # skip most at once
            if _is_classvar(annotation):
                continue
            if _is_initvar(annotation):
                raise TypeError(f"record {cls.__name__}: InitVar fields are not supported")
        if name == "self" or (annotation.endswith("KW_ONLY") if annotation.__class__ is str
                              else type(annotation).__name__ == "_KW_ONLY_TYPE"):
            raise TypeError(f"record {cls.__name__}: a field named {name!r} (or of type "
                            "KW_ONLY) is not supported")
        value = own.get(name, MISSING)
        if isinstance(value, RecordField):
            f = value
        elif type(value).__name__ == "Field" and type(value).__module__ == "dataclasses":
            if not value.init or getattr(value, "kw_only", False) is True:
                raise TypeError(f"record {cls.__name__}: field {name} is init=False or "
                                "kw_only, which records do not support")
            f = RecordField(
                MISSING if value.default is _dataclasses_missing() else value.default,
                MISSING if value.default_factory is _dataclasses_missing()
                else value.default_factory, value.repr, value.hash, value.compare)
        else:
            f = RecordField(value)
        if f.default is not MISSING and f.default.__class__.__hash__ is None:
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not "
                             "allowed: use default_factory")
        f.name, f.type = name, annotation
        fields[name] = f
    all_fields = tuple(fields.values())
    names = tuple(fields)
    compared = tuple([f.name for f in all_fields if f.compare])
    hashed = tuple([f.name for f in all_fields if f.hashed])

    methods: dict[str, Any] = {
        "__record_fields__": all_fields,
        "__record_params__": (frozen, eq),
        "__dataclass_fields__": _FIELDS_ATTRIBUTE,
        "__dataclass_params__": _PARAMS_ATTRIBUTE,
    }
    if "__repr__" not in own:
        methods["__repr__"] = _repr(cls, tuple([f.name for f in all_fields if f.repr]))
    if eq and "__eq__" not in own:
        methods["__eq__"] = _eq(cls, compared)
    explicit_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    if eq and not explicit_hash:
        methods["__hash__"] = _hash(cls, hashed) if frozen else None
    if "__match_args__" not in own:
        methods["__match_args__"] = names
    if own.get("__doc__") is None:
        methods["__doc__"] = _DOC_ATTRIBUTE
    if frozen and ("__setattr__" in own or "__delattr__" in own):
        raise TypeError(f"cannot overwrite attribute __setattr__ or __delattr__ in class "
                        f"{cls.__name__}")

    if slots:
        if "__slots__" in own:
            raise TypeError(f"{cls.__name__} already specifies __slots__")
        inherited_slots: set[str] = set()
        for base in cls.__mro__[1:-1]:
            found = base.__dict__.get("__slots__", ())
            inherited_slots.update((found,) if isinstance(found, str) else found)
        space = dict(own)
        for name in names:
            space.pop(name, None)
        space.pop("__dict__", None)
        space.pop("__weakref__", None)
        space.update(methods)
        space["__slots__"] = tuple([n for n in names if n not in inherited_slots])
        space["__qualname__"] = cls.__qualname__
        if frozen:
            getstate, setstate = _state(names)
            space.setdefault("__getstate__", getstate)
            space.setdefault("__setstate__", setstate)
        cls = type(cls)(cls.__name__, cls.__bases__, space)
    else:
        for name, value in methods.items():
            setattr(cls, name, value)
        for f in all_fields:
            if f.default is not MISSING:
                setattr(cls, f.name, f.default)
            elif f.name in own:
                delattr(cls, f.name)

    setters: list[Any] | None = None
    if slots and frozen:
        setters = [_slot_setter(cls, name) for name in names]
    elif frozen:
        setters = [_dict_setter(name) for name in names]
    if "__init__" not in own:
        type.__setattr__(cls, "__init__",
                         _init(cls, all_fields, setters, hasattr(cls, "__post_init__")))
    if frozen:
        setattr_, delattr_ = _frozen(cls, names)
        type.__setattr__(cls, "__setattr__", setattr_)
        type.__setattr__(cls, "__delattr__", delattr_)
    return cls


def _slot_setter(cls: type, name: str) -> Any:
    descriptor = cls.__dict__.get(name)
    if descriptor is not None:
        return descriptor.__set__
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None:
            return descriptor.__set__
    raise TypeError(f"no slot {name} in {cls.__name__}")


def _dict_setter(name: str) -> Any:
    set_ = object.__setattr__

    def setter(self: Any, value: Any) -> None:
        set_(self, name, value)

    return setter


def _dataclasses_missing() -> Any:
    return sys.modules["dataclasses"].MISSING


def _is_classvar(annotation: Any) -> bool:
    if annotation.__class__ is str:
        return "ClassVar" in annotation and annotation.startswith(
            ("ClassVar", "typing.ClassVar", "t.ClassVar"))
    typing = sys.modules.get("typing")
    return typing is not None and (annotation is typing.ClassVar or getattr(
        annotation, "__origin__", None) is typing.ClassVar)


def _is_initvar(annotation: Any) -> bool:
    if annotation.__class__ is str:
        return "InitVar" in annotation and annotation.startswith(
            ("InitVar", "dataclasses.InitVar"))
    return type(annotation).__name__ == "InitVar"


# ============================================================================ helpers


def is_record(obj: Any) -> bool:
    """Whether ``obj`` is a record class or an instance of one."""
    cls = obj if isinstance(obj, type) else type(obj)
    return hasattr(cls, "__record_fields__")


def record_fields(obj: Any) -> tuple[RecordField, ...]:
    """The fields of a record class or instance, in order (as ``dataclasses.fields``)."""
    cls = obj if isinstance(obj, type) else type(obj)
    found = getattr(cls, "__record_fields__", None)
    if found is None:
        raise TypeError("must be called with a record type or instance")
    return found


def field_names(obj: Any) -> tuple[str, ...]:
    """The names of the fields of a record class or instance, in order."""
    cls = obj if isinstance(obj, type) else type(obj)
    found = getattr(cls, "__record_fields__", ())
    return tuple([f.name for f in found])


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of ``obj`` with ``changes``: ``dataclasses.replace``, for records without
    importing dataclasses."""
    cls = type(obj)
    found = getattr(cls, "__record_fields__", None)
    if found is None:
        import dataclasses

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    for f in found:
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return cls(**changes)


def write_shipped_templates() -> None:
    """Write ``gtdsl/_record_templates.py`` (after a change to the templates)."""
    from pathlib import Path

    Path(__file__).with_name("_record_templates.py").write_text(shipped_templates(),
                                                                encoding="utf-8")
