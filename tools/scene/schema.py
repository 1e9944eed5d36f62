"""A tiny declarative validator for scenario JSON (no third-party dependency).

Each field type checks one value, fills defaults, and appends readable errors
("people[2].core_c: 45.0 is out of range [34.0, 43.0]") to a list, so a
scenario file with several mistakes reports all of them at once.
"""

import json
import math

REQUIRED = object()


class ScenarioError(ValueError):
    """A scenario file is invalid; the message lists every problem found."""

    def __init__(self, source, problems):
        self.source = source
        self.problems = list(problems)
        super().__init__("invalid scenario %s:\n  %s" % (source, "\n  ".join(self.problems)))


def _describe(v):
    return "%r (%s)" % (v, type(v).__name__)


class Field:
    def __init__(self, default=REQUIRED, doc=""):
        self.default = default
        self.doc = doc

    def check(self, value, path, errors):
        raise NotImplementedError


class Num(Field):
    def __init__(self, lo, hi, default=REQUIRED, nullable=False, doc=""):
        super().__init__(default, doc)
        self.lo, self.hi, self.nullable = lo, hi, nullable

    def check(self, value, path, errors):
        if value is None and self.nullable:
            return None
        # bool is an int in Python; a JSON true/false is never a number here
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append("%s: expected a number, got %s" % (path, _describe(value)))
            return None
        if not math.isfinite(value) or not (self.lo <= value <= self.hi):
            errors.append("%s: %r is out of range [%r, %r]" % (path, value, self.lo, self.hi))
            return None
        return float(value)


class Int(Num):
    def check(self, value, path, errors):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append("%s: expected an integer, got %s" % (path, _describe(value)))
            return None
        if not (self.lo <= value <= self.hi):
            errors.append("%s: %r is out of range [%r, %r]" % (path, value, self.lo, self.hi))
            return None
        return value


class Str(Field):
    def __init__(self, default=REQUIRED, choices=None, doc=""):
        super().__init__(default, doc)
        self.choices = choices

    def check(self, value, path, errors):
        if not isinstance(value, str):
            errors.append("%s: expected a string, got %s" % (path, _describe(value)))
            return None
        if self.choices is not None and value not in self.choices:
            errors.append("%s: %r is not one of %s" % (path, value, ", ".join(map(repr, self.choices))))
            return None
        return value


class Bool(Field):
    def check(self, value, path, errors):
        if not isinstance(value, bool):
            errors.append("%s: expected true or false, got %s" % (path, _describe(value)))
            return None
        return value


class Vec(Field):
    """A fixed-length list of numbers, each within [lo, hi]."""

    def __init__(self, n, lo, hi, default=REQUIRED, doc=""):
        super().__init__(default, doc)
        self.n, self.item = n, Num(lo, hi)

    def check(self, value, path, errors):
        if not isinstance(value, list) or len(value) != self.n:
            errors.append("%s: expected a list of %d numbers, got %s" % (path, self.n, _describe(value)))
            return None
        return [self.item.check(v, "%s[%d]" % (path, i), errors) for i, v in enumerate(value)]


class Either(Field):
    """The first alternative whose check passes (e.g. a keyword or a number)."""

    def __init__(self, *alternatives, default=REQUIRED, doc=""):
        super().__init__(default, doc)
        self.alternatives = alternatives

    def check(self, value, path, errors):
        collected = []
        for alt in self.alternatives:
            mine = []
            out = alt.check(value, path, mine)
            if not mine:
                return out
            collected.extend(mine)
        errors.append(" or ".join(collected))
        return None


class List(Field):
    def __init__(self, item, min_len=0, max_len=1000, default=REQUIRED, doc=""):
        super().__init__(default, doc)
        self.item, self.min_len, self.max_len = item, min_len, max_len

    def check(self, value, path, errors):
        if not isinstance(value, list):
            errors.append("%s: expected a list, got %s" % (path, _describe(value)))
            return []
        if not (self.min_len <= len(value) <= self.max_len):
            errors.append("%s: expected %d to %d items, got %d" % (path, self.min_len, self.max_len, len(value)))
        return [self.item.check(v, "%s[%d]" % (path, i), errors) for i, v in enumerate(value)]


class Obj(Field):
    """A JSON object with known keys: unknown keys and missing required ones are errors."""

    def __init__(self, fields, default=REQUIRED, doc=""):
        super().__init__(default, doc)
        self.fields = fields

    def check(self, value, path, errors):
        if not isinstance(value, dict):
            errors.append("%s: expected an object, got %s" % (path or "top level", _describe(value)))
            return {}
        prefix = path + "." if path else ""
        for key in value:
            if key not in self.fields:
                errors.append("%s%s: unknown key (allowed: %s)" % (prefix, key, ", ".join(sorted(self.fields))))
        out = {}
        for key, field in self.fields.items():
            if key in value:
                out[key] = field.check(value[key], prefix + key, errors)
            elif field.default is REQUIRED:
                errors.append("%s%s: missing required field" % (prefix, key))
            elif isinstance(field, Obj) and field.default == {}:
                out[key] = field.check({}, prefix + key, errors)  # fill nested defaults
            else:
                out[key] = field.default() if callable(field.default) else field.default
        return out


def describe(field, indent=""):
    """Human-readable schema listing (used by `python -m scene schema`)."""
    lines = []
    if isinstance(field, Obj):
        for key, f in field.fields.items():
            need = (
                "required"
                if f.default is REQUIRED
                else "default %s" % json.dumps(f.default() if callable(f.default) else f.default)
            )
            lines.append(("%s%s: %s, %s. %s" % (indent, key, _kind(f), need, f.doc)).rstrip())
            if isinstance(f, Obj):
                lines.extend(describe(f, indent + "    "))
            elif isinstance(f, List) and isinstance(f.item, Obj):
                lines.extend(describe(f.item, indent + "    "))
    return lines


def _kind(f):
    if isinstance(f, Int):
        return "integer in [%r, %r]" % (f.lo, f.hi)
    if isinstance(f, Num):
        return "number in [%r, %r]%s" % (f.lo, f.hi, " or null" if f.nullable else "")
    if isinstance(f, Str):
        return "one of %s" % "/".join(f.choices) if f.choices else "string"
    if isinstance(f, Bool):
        return "boolean"
    if isinstance(f, Vec):
        return "%d numbers in [%r, %r]" % (f.n, f.item.lo, f.item.hi)
    if isinstance(f, Either):
        return " or ".join(_kind(a) for a in f.alternatives)
    if isinstance(f, List):
        return "list of %s" % ("objects" if isinstance(f.item, Obj) else _kind(f.item))
    return "object"
