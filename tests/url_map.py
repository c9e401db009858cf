"""Walking `app.url_map`: every route, so the tests that use it cover routes added later too."""
import re

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# `<converter(args):name>` or `<name>` in a rule.
PLACEHOLDER = re.compile(r"<(?:([a-z_]+)(?:\(([^)]*)\))?:)?([a-z_]+)>")


def rules(app, methods=None, skip_endpoints=("static",)):
    """The app's rules (optionally only those answering one of `methods`), in a stable order."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint in skip_endpoints:
            continue
        if methods is not None and not (set(methods) & rule.methods):
            continue
        yield rule


def build(rule, value_for):
    """The rule's path with each placeholder replaced by `value_for(converter, args, name)`."""
    return PLACEHOLDER.sub(lambda m: str(value_for(m.group(1) or "default", m.group(2) or "", m.group(3))), rule.rule)


def plain_value(converter, args, name):
    """A value the rule matches: 1 for numbers, the first choice of an `any`, else a word."""
    if converter in ("int", "float"):
        return "1"
    if converter == "any":
        return args.split(",")[0].strip().strip("'\"")
    return "x"
