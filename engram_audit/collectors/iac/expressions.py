"""ARM template expressions, evaluated as far as a template and its parameters allow.

The language (learn.microsoft.com/azure/azure-resource-manager/templates/template-expressions
and template-functions): a string in brackets, ``[concat(parameters('a'), '-x')]``, is an
expression; ``[[`` escapes a literal bracket. Functions are called by name, values are JSON,
``.name`` and ``[index]`` select into objects and arrays.

What a review before deployment cannot know is ``Unknown``: a parameter without a value,
``reference()``, ``listKeys()``, ``uniqueString()``, ``utcNow()``, the deployment's subscription
and resource group. An unknown spreads through every function that needs its value, but not
through one that does not: ``if(cond, a, b)`` with an unknown ``cond`` is known when both
branches agree, an object built with one unknown property keeps its other properties, and only
the branch ``if`` takes is evaluated (so a ``fail()`` on the other branch is never reached). A
function this module does not implement is unknown too, never guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER_SUBSCRIPTION = "(deployment-subscription)"
PLACEHOLDER_GROUP = "(deployment-resource-group)"
_MAX_DEPTH = 64


class Unknown:
    """A value known only at deployment; ``candidates``: the values it can take, when the
    template lists them (a parameter's ``allowedValues``)."""

    __slots__ = ("candidates", "reason")

    def __init__(self, reason: str, candidates: tuple[Any, ...] = ()) -> None:
        self.reason = reason
        self.candidates = candidates

    def __repr__(self) -> str:
        return f"Unknown({self.reason!r})"


class TemplateError(ValueError):
    """An expression that is not valid ARM syntax."""


def is_expression(value: Any) -> bool:
    return (
        isinstance(value, str)
        and value.startswith("[")
        and value.endswith("]")
        and not value.startswith("[[")
    )


def contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def first_unknown(value: Any) -> Unknown | None:
    if isinstance(value, Unknown):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = first_unknown(item)
        if found is not None:
            return found
    return None


# --- parsing ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_$][\w$]*)"
    r"|(?P<punct>[(),.\[\]]))"
)


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Member:
    target: Any
    name: str


@dataclass(frozen=True)
class Index:
    target: Any
    index: Any


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise TemplateError(f"cannot read the expression at {text[position:][:20]!r}")
        position = match.end()
        if match.group("string") is not None:
            tokens.append(("string", match.group("string")[1:-1].replace("''", "'")))
        elif match.group("number") is not None:
            number = match.group("number")
            tokens.append(("number", float(number) if "." in number else int(number)))
        elif match.group("name") is not None:
            tokens.append(("name", match.group("name")))
        else:
            tokens.append(("punct", match.group("punct")))
    return tokens


def parse(text: str) -> Any:
    """The syntax tree of an expression (the text between the outer brackets)."""
    tokens = _tokens(text)
    node, position = _parse(tokens, 0)
    if position != len(tokens):
        raise TemplateError(f"unexpected {tokens[position][1]!r} in expression")
    return node


def _parse(tokens: list[tuple[str, Any]], position: int) -> tuple[Any, int]:
    if position >= len(tokens):
        raise TemplateError("the expression ends too early")
    kind, value = tokens[position]
    position += 1
    node: Any
    if kind in ("string", "number"):
        node = Literal(value)
    elif kind == "name":
        if position < len(tokens) and tokens[position] == ("punct", "("):
            args: list[Any] = []
            position += 1
            if tokens[position] != ("punct", ")"):
                while True:
                    argument, position = _parse(tokens, position)
                    args.append(argument)
                    if tokens[position] == ("punct", ","):
                        position += 1
                        continue
                    break
            if position >= len(tokens) or tokens[position] != ("punct", ")"):
                raise TemplateError(f"{value}( is not closed")
            position += 1
            node = Call(value.casefold(), tuple(args))
        else:
            raise TemplateError(f"{value!r} is not a function call")
    else:
        raise TemplateError(f"unexpected {value!r} in expression")
    while position < len(tokens) and tokens[position] in (("punct", "."), ("punct", "[")):
        if tokens[position] == ("punct", "."):
            name_kind, name = tokens[position + 1] if position + 1 < len(tokens) else ("", "")
            if name_kind != "name":
                raise TemplateError("a property name must follow '.'")
            node = Member(node, name)
            position += 2
        else:
            index, position = _parse(tokens, position + 1)
            if position >= len(tokens) or tokens[position] != ("punct", "]"):
                raise TemplateError("'[' is not closed")
            node = Index(node, index)
            position += 1
    return node, position


# --- evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lambda:
    names: tuple[str, ...]
    body: Any
    scope: Scope


@dataclass
class Scope:
    """What expressions of one template see: its parameters (already resolved), its variables
    (evaluated on first use), the current copy indexes and lambda variables."""

    parameters: Mapping[str, Any]
    variables: Mapping[str, Any]
    copy_index: Mapping[str | None, int] = field(default_factory=dict)
    lambda_variables: Mapping[str, Any] = field(default_factory=dict)
    _resolved: dict[str, Any] = field(default_factory=dict)
    _resolving: set[str] = field(default_factory=set)
    depth: int = 0

    def child(self, **changes: Any) -> Scope:
        child = Scope(
            parameters=self.parameters,
            variables=self.variables,
            copy_index=changes.get("copy_index", self.copy_index),
            lambda_variables=changes.get("lambda_variables", self.lambda_variables),
            depth=self.depth + 1,
        )
        # Variables do not depend on copy indexes of resources: share what is resolved.
        child._resolved = self._resolved
        child._resolving = self._resolving
        return child

    def value(self, raw: Any) -> Any:
        """A template value with every expression in it evaluated (property ``copy`` loops
        expanded)."""
        if self.depth > _MAX_DEPTH:
            return Unknown("the template nests deeper than engram-audit evaluates")
        if isinstance(raw, str):
            if is_expression(raw):
                try:
                    return self.evaluate(parse(raw[1:-1]))
                except TemplateError as error:
                    return Unknown(f"expression {raw[:60]!r} is not valid: {error}")
            return raw[1:] if raw.startswith("[[") else raw
        if isinstance(raw, list):
            return [self.value(item) for item in raw]
        if isinstance(raw, dict):
            result: dict[str, Any] = {}
            for key, item in raw.items():
                if key == "copy" and isinstance(item, list):
                    result.update(self._property_copies(item))
                else:
                    result[key] = self.value(item)
            return result
        return raw

    def _property_copies(self, loops: list[Any]) -> dict[str, Any]:
        produced: dict[str, Any] = {}
        for loop in loops:
            if not isinstance(loop, dict) or "name" not in loop:
                continue
            name = str(loop["name"])
            count = self.value(loop.get("count"))
            if isinstance(count, Unknown) or not isinstance(count, int):
                produced[name] = Unknown(f"copy loop {name}: its count is not known")
                continue
            produced[name] = [
                self.child(copy_index={**self.copy_index, name: i, None: i}).value(
                    loop.get("input")
                )
                for i in range(count)
            ]
        return produced

    def variable(self, name: str) -> Any:
        key = _find_key(self.variables, name)
        if key is None:
            if name.casefold() in {str(k).casefold() for k in _copy_names(self.variables)}:
                return self._variable_copy(name)
            return Unknown(f"variable '{name}' is not defined in the template")
        if key in self._resolved:
            return self._resolved[key]
        if key in self._resolving:
            return Unknown(f"variable '{name}' refers to itself")
        self._resolving.add(key)
        try:
            value = self.value(self.variables[key])
        finally:
            self._resolving.discard(key)
        self._resolved[key] = value
        return value

    def _variable_copy(self, name: str) -> Any:
        for loop in _list(self.variables.get("copy")):
            if isinstance(loop, dict) and str(loop.get("name", "")).casefold() == name.casefold():
                return self._property_copies([loop])[str(loop["name"])]
        return Unknown(f"variable '{name}' is not defined in the template")

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Member):
            return _member(self.evaluate(node.target), node.name)
        if isinstance(node, Index):
            return _index(self.evaluate(node.target), self.evaluate(node.index))
        if isinstance(node, Call):
            lazy = _LAZY.get(node.name)
            if lazy is not None:
                return lazy(self, node.args)
            function = _FUNCTIONS.get(node.name)
            if function is None:
                return Unknown(f"template function {node.name}() is not evaluated by engram-audit")
            return function(self, [self.evaluate(arg) for arg in node.args])
        raise TemplateError(f"cannot evaluate {node!r}")


def _copy_names(variables: Mapping[str, Any]) -> list[str]:
    return [
        str(loop.get("name"))
        for loop in _list(variables.get("copy"))
        if isinstance(loop, dict) and "name" in loop
    ]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _find_key(mapping: Mapping[str, Any], name: str) -> str | None:
    if name in mapping:
        return name
    folded = name.casefold()
    return next((k for k in mapping if isinstance(k, str) and k.casefold() == folded), None)


def _member(target: Any, name: str) -> Any:
    if isinstance(target, Unknown):
        return Unknown(target.reason)
    if isinstance(target, dict):
        key = _find_key(target, name)
        if key is None:
            return Unknown(f"the template reads property '{name}', which the object does not have")
        return target[key]
    return Unknown(f"the template reads property '{name}' of a {type(target).__name__}")


def _index(target: Any, index: Any) -> Any:
    if isinstance(target, Unknown) or isinstance(index, Unknown):
        return Unknown((target if isinstance(target, Unknown) else index).reason)
    if isinstance(target, list) and isinstance(index, int) and not isinstance(index, bool):
        if -len(target) <= index < len(target):
            return target[index]
        return Unknown(f"index {index} is outside the array")
    if isinstance(target, dict) and isinstance(index, str):
        return _member(target, index)
    return Unknown("the template indexes a value that cannot be indexed")


# --- functions ---------------------------------------------------------------------------------

Function = Callable[[Scope, list[Any]], Any]
LazyFunction = Callable[[Scope, Sequence[Any]], Any]


def _strict(function: Callable[..., Any]) -> Function:
    """A function of known values: unknown when any argument holds an unknown."""

    def call(scope: Scope, args: list[Any]) -> Any:
        for arg in args:
            unknown = first_unknown(arg)
            if unknown is not None:
                return Unknown(unknown.reason)
        try:
            return function(*args)
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as error:
            return Unknown(f"the template's expression fails: {error}")

    return call


def _if(scope: Scope, args: Sequence[Any]) -> Any:
    if len(args) != 3:
        return Unknown("if() takes three arguments")
    condition = scope.evaluate(args[0])
    if isinstance(condition, Unknown):
        yes, no = scope.evaluate(args[1]), scope.evaluate(args[2])
        if not contains_unknown(yes) and yes == no:
            return yes
        return Unknown(condition.reason)
    return scope.evaluate(args[1] if _truthy(condition) else args[2])


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.casefold() == "true")


def _and(scope: Scope, args: Sequence[Any]) -> Any:
    unknown: Unknown | None = None
    for arg in args:
        value = scope.evaluate(arg)
        if isinstance(value, Unknown):
            unknown = unknown or value
        elif not _truthy(value):
            return False
    return Unknown(unknown.reason) if unknown else True


def _or(scope: Scope, args: Sequence[Any]) -> Any:
    unknown: Unknown | None = None
    for arg in args:
        value = scope.evaluate(arg)
        if isinstance(value, Unknown):
            unknown = unknown or value
        elif _truthy(value):
            return True
    return Unknown(unknown.reason) if unknown else False


def _coalesce(scope: Scope, args: Sequence[Any]) -> Any:
    for arg in args:
        value = scope.evaluate(arg)
        if isinstance(value, Unknown):
            return Unknown(value.reason)
        if value is not None:
            return value
    return None


def _lambda(scope: Scope, args: Sequence[Any]) -> Any:
    names = []
    for arg in args[:-1]:
        if not isinstance(arg, Literal) or not isinstance(arg.value, str):
            return Unknown("lambda() takes names, then an expression")
        names.append(arg.value)
    return Lambda(tuple(names), args[-1] if args else Literal(None), scope)


def _apply(function: Any, *values: Any) -> Any:
    if not isinstance(function, Lambda):
        return Unknown("a lambda was expected")
    bound = dict(function.scope.lambda_variables)
    bound.update(
        {name.casefold(): value for name, value in zip(function.names, values, strict=False)}
    )
    return function.scope.child(lambda_variables=bound).evaluate(function.body)


def _lambda_variable(scope: Scope, args: list[Any]) -> Any:
    name = args[0] if args else None
    if not isinstance(name, str) or name.casefold() not in scope.lambda_variables:
        return Unknown(f"lambda variable {name!r} is not defined")
    return scope.lambda_variables[name.casefold()]


def _map(scope: Scope, args: list[Any]) -> Any:
    items, function = args[0], args[1]
    if isinstance(items, Unknown):
        return Unknown(items.reason)
    if not isinstance(items, list):
        return Unknown("map() takes an array")
    return [_apply(function, item, i) for i, item in enumerate(items)]


def _filter(scope: Scope, args: list[Any]) -> Any:
    items, function = args[0], args[1]
    if isinstance(items, Unknown):
        return Unknown(items.reason)
    if not isinstance(items, list):
        return Unknown("filter() takes an array")
    kept = []
    for i, item in enumerate(items):
        keep = _apply(function, item, i)
        if isinstance(keep, Unknown):
            return Unknown(keep.reason)
        if _truthy(keep):
            kept.append(item)
    return kept


def _reduce(scope: Scope, args: list[Any]) -> Any:
    items, current, function = args[0], args[1], args[2]
    if isinstance(items, Unknown):
        return Unknown(items.reason)
    if not isinstance(items, list):
        return Unknown("reduce() takes an array")
    for i, item in enumerate(items):
        current = _apply(function, current, item, i)
    return current


def _to_object(scope: Scope, args: list[Any]) -> Any:
    items = args[0]
    if isinstance(items, Unknown):
        return Unknown(items.reason)
    if not isinstance(items, list):
        return Unknown("toObject() takes an array")
    result: dict[str, Any] = {}
    for item in items:
        key = _apply(args[1], item)
        if isinstance(key, Unknown):
            return Unknown(key.reason)
        result[str(key)] = _apply(args[2], item) if len(args) > 2 else item
    return result


def _copy_index(scope: Scope, args: list[Any]) -> Any:
    loop: str | None = None
    offset = 0
    for arg in args:
        if isinstance(arg, str):
            loop = arg
        elif isinstance(arg, int):
            offset = arg
    index = None
    if loop is None:
        index = scope.copy_index.get(None)
    else:
        index = next(
            (
                i
                for name, i in scope.copy_index.items()
                if name and name.casefold() == loop.casefold()
            ),
            None,
        )
    if index is None:
        return Unknown("copyIndex() outside a copy loop")
    return index + offset


def _parameter(scope: Scope, args: list[Any]) -> Any:
    name = args[0] if args else None
    if not isinstance(name, str):
        return Unknown("parameters() takes a name")
    key = _find_key(scope.parameters, name)
    if key is None:
        return Unknown(f"template parameter '{name}' is not declared")
    return scope.parameters[key]


def _variables(scope: Scope, args: list[Any]) -> Any:
    name = args[0] if args else None
    return scope.variable(name) if isinstance(name, str) else Unknown("variables() takes a name")


def _resource_id(*segments: Any, subscription: bool = True, group: bool = True) -> Any:
    parts = list(segments)
    type_at = next(
        (
            i
            for i, part in enumerate(parts)
            if isinstance(part, str) and "/" in part and "." in part.split("/")[0]
        ),
        None,
    )
    if type_at is None:
        return Unknown("resourceId() without a resource type")
    prefix = parts[:type_at]
    kind, names = str(parts[type_at]), [str(n) for n in parts[type_at + 1 :]]
    sub, rg = PLACEHOLDER_SUBSCRIPTION, PLACEHOLDER_GROUP
    if group and len(prefix) == 2:
        sub, rg = str(prefix[0]), str(prefix[1])
    elif group and len(prefix) == 1:
        rg = str(prefix[0])
    elif not group and prefix:
        sub = str(prefix[0])
    namespace, *types = kind.split("/")
    path = f"/providers/{namespace}"
    for i, type_name in enumerate(types):
        path += f"/{type_name}/{names[i] if i < len(names) else ''}"
    if not subscription:
        return path
    if not group:
        return f"/subscriptions/{sub}{path}"
    return f"/subscriptions/{sub}/resourceGroups/{rg}{path}"


def _format(template: str, *values: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return _string(values[index])

    return re.sub(r"\{(\d+)(?::[^}]*)?\}", replace, template)


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return ""
    return str(value)


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return str(item).casefold() in container.casefold()
    if isinstance(container, dict):
        return _find_key(container, str(item)) is not None
    return item in container


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def _union(*values: Any) -> Any:
    if all(isinstance(v, dict) for v in values):
        merged: dict[str, Any] = {}
        for value in values:
            merged.update(value)
        return merged
    merged_list: list[Any] = []
    for value in values:
        for item in value:
            if item not in merged_list:
                merged_list.append(item)
    return merged_list


def _try_get(target: Any, *keys: Any) -> Any:
    current = target
    for key in keys:
        if isinstance(current, Unknown) or isinstance(key, Unknown):
            return Unknown((current if isinstance(current, Unknown) else key).reason)
        if isinstance(current, dict) and isinstance(key, str):
            found = _find_key(current, key)
            current = current[found] if found is not None else None
        elif (
            isinstance(current, list)
            and isinstance(key, int)
            and -len(current) <= key < len(current)
        ):
            current = current[key]
        else:
            return None
    return current


def _equals(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    return bool(left == right)


def _tolerant(function: Callable[..., Any]) -> Function:
    """A function that can build values around unknowns (objects, arrays, lookups)."""

    def call(scope: Scope, args: list[Any]) -> Any:
        try:
            return function(*args)
        except (TypeError, ValueError, IndexError, KeyError) as error:
            return Unknown(f"the template's expression fails: {error}")

    return call


def _length(value: Any) -> Any:
    if isinstance(value, Unknown):
        return Unknown(value.reason)
    return len(value) if value is not None else 0


def _first(value: Any) -> Any:
    if isinstance(value, Unknown):
        return Unknown(value.reason)
    return value[0] if value else None


def _last(value: Any) -> Any:
    if isinstance(value, Unknown):
        return Unknown(value.reason)
    return value[-1] if value else None


def _concat(*values: Any) -> Any:
    if values and all(isinstance(v, list) for v in values):
        return [item for value in values for item in value]
    for value in values:
        unknown = first_unknown(value)
        if unknown is not None:
            return Unknown(unknown.reason)
    return "".join(_string(v) for v in values)


def _empty_tolerant(value: Any) -> Any:
    if isinstance(value, Unknown):
        return Unknown(value.reason)
    return _empty(value)


def _fail(scope: Scope, args: list[Any]) -> Any:
    message = args[0] if args and isinstance(args[0], str) else "fail()"
    return Unknown(f"the template fails the deployment here: {message}")


def _unknown(what: str) -> Function:
    return lambda scope, args: Unknown(f"{what} is known only at deployment")


def _context(function: str, *keys: str) -> Function:
    return lambda scope, args: {
        key: Unknown(f"{function}().{key} is known only at deployment") for key in keys
    }


_LAZY: dict[str, LazyFunction] = {
    "if": _if,
    "and": _and,
    "or": _or,
    "coalesce": _coalesce,
    "lambda": _lambda,
}

_FUNCTIONS: dict[str, Function] = {
    "parameters": _parameter,
    "variables": _variables,
    "copyindex": _copy_index,
    "lambdavariables": _lambda_variable,
    "map": _map,
    "filter": _filter,
    "reduce": _reduce,
    "toobject": _to_object,
    "null": lambda scope, args: None,
    "true": lambda scope, args: True,
    "false": lambda scope, args: False,
    "fail": _fail,
    "equals": _strict(_equals),
    "not": _strict(lambda value: not _truthy(value)),
    "greater": _strict(lambda a, b: a > b),
    "greaterorequals": _strict(lambda a, b: a >= b),
    "less": _strict(lambda a, b: a < b),
    "lessorequals": _strict(lambda a, b: a <= b),
    "add": _strict(lambda a, b: a + b),
    "sub": _strict(lambda a, b: a - b),
    "mul": _strict(lambda a, b: a * b),
    "div": _strict(lambda a, b: int(a / b)),
    "mod": _strict(lambda a, b: a % b),
    "min": _strict(lambda *v: min(v[0]) if len(v) == 1 and isinstance(v[0], list) else min(v)),
    "max": _strict(lambda *v: max(v[0]) if len(v) == 1 and isinstance(v[0], list) else max(v)),
    "range": _strict(lambda start, count: list(range(start, start + count))),
    "string": _strict(_string),
    "int": _strict(lambda value: int(value)),
    "float": _strict(lambda value: float(value)),
    "bool": _strict(
        lambda value: value if isinstance(value, bool) else str(value).casefold() == "true"
    ),
    "json": _strict(lambda text: json.loads(text)),
    "concat": _tolerant(_concat),
    "format": _strict(_format),
    "tolower": _strict(lambda text: text.lower()),
    "toupper": _strict(lambda text: text.upper()),
    "trim": _strict(lambda text: text.strip()),
    "replace": _strict(lambda text, old, new: text.replace(old, new)),
    "split": _strict(
        lambda text, sep: (
            re.split("|".join(map(re.escape, sep)), text)
            if isinstance(sep, list)
            else text.split(sep)
        )
    ),
    "join": _strict(lambda items, sep: sep.join(_string(i) for i in items)),
    "substring": _strict(
        lambda text, start, length=None: text[start : None if length is None else start + length]
    ),
    "startswith": _strict(lambda text, prefix: text.casefold().startswith(prefix.casefold())),
    "endswith": _strict(lambda text, suffix: text.casefold().endswith(suffix.casefold())),
    "indexof": _strict(
        lambda text, item: (
            text.casefold().find(item.casefold())
            if isinstance(text, str)
            else text.index(item)
            if item in text
            else -1
        )
    ),
    "lastindexof": _strict(lambda text, item: text.casefold().rfind(item.casefold())),
    "padleft": _strict(lambda value, width, char=" ": _string(value).rjust(width, char)),
    "contains": _strict(_contains),
    "empty": _tolerant(_empty_tolerant),
    "length": _tolerant(_length),
    "first": _tolerant(_first),
    "last": _tolerant(_last),
    "take": _tolerant(lambda items, count: items[:count]),
    "skip": _tolerant(lambda items, count: items[count:]),
    "array": _tolerant(lambda value: value if isinstance(value, list) else [value]),
    "createarray": _tolerant(lambda *items: list(items)),
    "createobject": _tolerant(
        lambda *pairs: {str(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)}
    ),
    "union": _tolerant(_union),
    "shallowmerge": _tolerant(lambda items: _union(*items)),
    "intersection": _strict(
        lambda *values: (
            {k: v for k, v in values[0].items() if all(o.get(k) == v for o in values[1:])}
            if isinstance(values[0], dict)
            else [item for item in values[0] if all(item in o for o in values[1:])]
        )
    ),
    "items": _tolerant(lambda obj: [{"key": k, "value": obj[k]} for k in sorted(obj)]),
    "objectkeys": _tolerant(lambda obj: list(obj)),
    "flatten": _tolerant(lambda items: [i for sub in items for i in sub]),
    "trygetvalue": _tolerant(_try_get),
    "tryget": _tolerant(_try_get),
    "resourceid": _strict(_resource_id),
    "subscriptionresourceid": _strict(lambda *segments: _resource_id(*segments, group=False)),
    "tenantresourceid": _strict(lambda *segments: _resource_id(*segments, subscription=False)),
    "extensionresourceid": _strict(
        lambda scope_id, *segments: f"{scope_id}{_resource_id(*segments, subscription=False)}"
    ),
    "resourcegroup": _context("resourceGroup", "id", "name", "location", "tags"),
    "subscription": _context("subscription", "id", "subscriptionId", "tenantId", "displayName"),
    "tenant": _context("tenant", "tenantId", "displayName"),
    "deployment": _context("deployment", "name", "properties"),
    "environment": _unknown("environment()"),
    "managementgroup": _unknown("managementGroup()"),
    "reference": _unknown("reference() of a deployed resource"),
    "resourceinfo": _unknown("resourceInfo()"),
    "list": _unknown("a list*() call"),
    "listkeys": _unknown("listKeys()"),
    "listsecrets": _unknown("listSecrets()"),
    "uniquestring": _unknown("uniqueString()"),
    "guid": _unknown("guid()"),
    "newguid": _unknown("newGuid()"),
    "utcnow": _unknown("utcNow()"),
    "datetimeadd": _unknown("dateTimeAdd()"),
    "pickzones": _unknown("pickZones()"),
    "providers": _unknown("providers()"),
}
