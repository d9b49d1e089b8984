# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dockerfile instructions that ``docker commit --change`` accepts.

The engine joins all changes with newlines and runs them through its
Dockerfile parser, so a change is checked here before it is sent: one
instruction per change, from the set the engine applies on commit, with
arguments that parse the way the engine parses them. Errors are one line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError
from ansible_collections.dockhand.registry.plugins.module_utils.oci import sha256_digest

COMMIT_INSTRUCTIONS = (
    "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME",
    "WORKDIR", "STOPSIGNAL", "HEALTHCHECK",
)

# Triggers ONBUILD may register; the engine refuses ONBUILD, FROM and MAINTAINER there.
ONBUILD_TRIGGERS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL",
    "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)
ONBUILD_FORBIDDEN = ("ONBUILD", "FROM", "MAINTAINER")

HEALTHCHECK_DURATION_FLAGS = ("interval", "timeout", "start-period", "start-interval")
HEALTHCHECK_FLAGS = HEALTHCHECK_DURATION_FLAGS + ("retries",)

# Linux signal names as the engine's signal.ParseSignal knows them (without SIG).
SIGNAL_NAMES = frozenset(
    "ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR QUIT SEGV"
    " STKFLT STOP SYS TERM TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ"
    " RTMIN RTMAX".split()
    + ["RTMIN+%d" % n for n in range(1, 16)]
    + ["RTMAX-%d" % n for n in range(1, 15)]
)
MAX_SIGNAL_NUMBER = 64

_PORT_RE = re.compile(r"^([0-9]+)(?:-([0-9]+))?(?:/([A-Za-z]+))?$")
_PORT_PROTOCOLS = ("tcp", "udp", "sctp")
_USER_RE = re.compile(r"^[^\s:]+(?::[^\s:]+)?$")
_DURATION_PART_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_DURATION_UNITS_NS = {
    "ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": 1000000,
    "s": 1000000000, "m": 60000000000, "h": 3600000000000,
}
_WINDOWS_PATH_RE = re.compile(r"^[A-Za-z]:[\\/]")


def sha256_of_json(value) -> str:
    """``sha256:<hex>`` of ``value`` as canonical JSON (sorted keys, no spaces), for fingerprint labels."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256_digest(text.encode("utf-8"))


class ChangeError(DockhandError, ValueError):
    """A change instruction the engine would refuse or misread."""


@dataclass(frozen=True)
class Change:
    """One validated instruction in its normalized spelling."""

    instruction: str
    arguments: str
    label_keys: Tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.instruction + " " + self.arguments


def split_words(text: str) -> List[str]:
    """Split ``text`` into words the way the Dockerfile parser splits ENV and LABEL.

    Quotes and backslash escapes are kept in the words (the engine removes them
    later); an unterminated quote raises ChangeError.
    """
    words = []
    word = ""
    in_word = False
    quote = None
    position = 0
    while position < len(text):
        char = text[position]
        if quote is not None:
            word += char
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"' and position + 1 < len(text):
                position += 1
                word += text[position]
        elif char.isspace():
            if in_word:
                words.append(word)
                word = ""
                in_word = False
        else:
            in_word = True
            word += char
            if char in ("'", '"'):
                quote = char
            elif char == "\\" and position + 1 < len(text):
                position += 1
                word += text[position]
        position += 1
    if quote is not None:
        raise ChangeError("unterminated %s quote" % ("double" if quote == '"' else "single"))
    if in_word:
        words.append(word)
    return words


def unquote(word: str) -> str:
    """``word`` with its quotes and escapes removed (no variable expansion)."""
    result = ""
    quote = None
    position = 0
    while position < len(word):
        char = word[position]
        if quote is None and char in ("'", '"'):
            quote = char
        elif quote is not None and char == quote:
            quote = None
        elif char == "\\" and quote != "'" and position + 1 < len(word):
            position += 1
            result += word[position]
        else:
            result += char
        position += 1
    return result


def _parse_exec_form(arguments: str) -> Optional[List[str]]:
    """The JSON array of an exec-form argument, None for shell form."""
    if not arguments.startswith("["):
        return None
    try:
        value = json.loads(arguments)
    except ValueError:
        raise ChangeError(
            "starts with '[' but is not a JSON array of strings (use double quotes,"
            " or write the shell form without the brackets)"
        )
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ChangeError("the exec form must be a JSON array of strings")
    return value


def _check_command(arguments: str) -> None:
    _parse_exec_form(arguments)


def _check_key_values(instruction: str, arguments: str) -> Tuple[str, ...]:
    """Check ENV/LABEL ``key=value ...`` (or legacy ``key value``); return the keys."""
    words = split_words(arguments)
    if "=" not in words[0]:
        parts = arguments.split(None, 1)
        if len(parts) < 2:
            raise ChangeError("%s needs key=value (or the legacy form 'key value')" % instruction)
        return (unquote(parts[0]),)
    keys = []
    for word in words:
        if "=" not in word:
            raise ChangeError("%r is not of the form key=value" % word)
        raw_key, raw_value = word.split("=", 1)
        # The engine splits at the first '=' before it removes quotes, so a quote
        # around the whole pair leaves the key and the value each unterminated.
        for part in (raw_key, raw_value):
            try:
                split_words(part)
            except ChangeError:
                raise ChangeError(
                    "quotes in %r span the '='; quote the key and the value separately,"
                    " as in key=\"some value\"" % word
                )
        key = unquote(raw_key)
        if not key:
            raise ChangeError("%r has an empty key" % word)
        keys.append(key)
    return tuple(keys)


def _check_expose(arguments: str) -> None:
    for spec in arguments.split():
        if "$" in spec:
            continue  # expanded by the engine from the image's environment
        match = _PORT_RE.match(spec)
        if not match:
            raise ChangeError("%r is not a port spec like 80, 80/udp or 8000-8010/tcp" % spec)
        first, last, protocol = match.groups()
        for port in (first, last):
            if port is not None and not 1 <= int(port) <= 65535:
                raise ChangeError("port %s in %r is out of range 1-65535" % (port, spec))
        if last is not None and int(last) < int(first):
            raise ChangeError("port range %r ends before it starts" % spec)
        if protocol is not None and protocol.lower() not in _PORT_PROTOCOLS:
            raise ChangeError("protocol %r in %r is not one of tcp, udp, sctp" % (protocol, spec))


def _check_user(arguments: str) -> None:
    if not _USER_RE.match(arguments):
        raise ChangeError("%r is not a single user[:group]" % arguments)


def _check_volume(arguments: str) -> None:
    paths = _parse_exec_form(arguments)
    if paths is None:
        paths = arguments.split()
    if not paths:
        raise ChangeError("VOLUME needs at least one path")
    for path in paths:
        if not path.strip():
            raise ChangeError("a volume path must not be empty")
        if "$" not in path and not (path.startswith("/") or _WINDOWS_PATH_RE.match(path)):
            raise ChangeError("volume path %r is not absolute" % path)


def _check_stopsignal(arguments: str) -> None:
    if arguments.isdigit():
        if not 1 <= int(arguments) <= MAX_SIGNAL_NUMBER:
            raise ChangeError("signal number %s is out of range 1-%d" % (arguments, MAX_SIGNAL_NUMBER))
        return
    name = arguments.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name not in SIGNAL_NAMES:
        raise ChangeError("%r is not a signal name or number" % arguments)


def parse_duration(text: str) -> int:
    """Nanoseconds of a Go duration such as ``30s``, ``1m30s`` or ``500ms``."""
    if text == "0":
        return 0
    position = 0
    total = 0.0
    while position < len(text):
        match = _DURATION_PART_RE.match(text, position)
        if not match or match.group(1) in ("", "."):
            raise ChangeError("%r is not a duration like 30s, 1m30s or 500ms" % text)
        total += float(match.group(1)) * _DURATION_UNITS_NS[match.group(2)]
        position = match.end()
    if not text:
        raise ChangeError("empty duration")
    return int(total)


def _check_healthcheck(arguments: str) -> None:
    words = arguments.split()
    seen = set()
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        name, has_value, value = flag[2:].partition("=")
        if name not in HEALTHCHECK_FLAGS:
            raise ChangeError(
                "unknown HEALTHCHECK option --%s (known: %s)"
                % (name, ", ".join("--" + known for known in HEALTHCHECK_FLAGS))
            )
        if name in seen:
            raise ChangeError("HEALTHCHECK option --%s is given twice" % name)
        seen.add(name)
        if not has_value or not value:
            raise ChangeError("HEALTHCHECK option --%s needs a value: --%s=VALUE" % (name, name))
        if name == "retries":
            if not value.isdigit():
                raise ChangeError("--retries=%s is not a whole number >= 0" % value)
        else:
            nanoseconds = parse_duration(value)
            if 0 < nanoseconds < 1000000:
                raise ChangeError("--%s=%s is shorter than 1ms" % (name, value))
    if not words:
        raise ChangeError("HEALTHCHECK needs CMD <command> or NONE")
    kind = words[0].upper()
    if kind == "NONE":
        if len(words) > 1 or seen:
            raise ChangeError("HEALTHCHECK NONE takes no options or arguments")
        return
    if kind != "CMD":
        raise ChangeError("HEALTHCHECK needs CMD <command> or NONE, not %r" % words[0])
    command = arguments.split(None, len(seen) + 1)[len(seen) + 1:] if len(words) > 1 else []
    if not command or not command[0].strip():
        raise ChangeError("HEALTHCHECK CMD needs a command")
    exec_form = _parse_exec_form(command[0].strip())
    if exec_form is not None and not exec_form:
        raise ChangeError("HEALTHCHECK CMD needs a command")


def _normalize_healthcheck(arguments: str) -> str:
    words = arguments.split()
    flags = []
    while words and words[0].startswith("--"):
        flags.append(words.pop(0))
    if words[0].upper() == "NONE":
        return "NONE"
    command = arguments.split(None, len(flags) + 1)[len(flags) + 1].strip()
    return " ".join(flags + ["CMD", command])


def _parse(text: str, inside_onbuild: bool = False) -> Change:
    stripped = text.strip()
    if not stripped:
        raise ChangeError("empty instruction")
    parts = stripped.split(None, 1)
    instruction = parts[0].upper()
    arguments = parts[1].strip() if len(parts) > 1 else ""
    if inside_onbuild:
        if instruction in ONBUILD_FORBIDDEN:
            raise ChangeError("%s is not allowed as an ONBUILD trigger" % instruction)
        if instruction not in ONBUILD_TRIGGERS:
            raise ChangeError(
                "%r is not a Dockerfile instruction ONBUILD can register" % parts[0]
            )
    elif instruction not in COMMIT_INSTRUCTIONS:
        raise ChangeError(
            "%r is not an instruction docker commit applies (use one of %s)"
            % (parts[0], ", ".join(COMMIT_INSTRUCTIONS))
        )
    if not arguments:
        raise ChangeError("%s needs arguments" % instruction)

    label_keys = ()
    if instruction in ("CMD", "ENTRYPOINT"):
        _check_command(arguments)
    elif instruction in ("ENV", "LABEL"):
        keys = _check_key_values(instruction, arguments)
        if instruction == "LABEL":
            label_keys = keys
    elif instruction == "EXPOSE":
        _check_expose(arguments)
    elif instruction == "USER":
        _check_user(arguments)
    elif instruction == "VOLUME":
        _check_volume(arguments)
    elif instruction == "WORKDIR":
        pass  # any non-empty path; relative ones extend the current working directory
    elif instruction == "STOPSIGNAL":
        _check_stopsignal(arguments)
    elif instruction == "HEALTHCHECK":
        _check_healthcheck(arguments)
        arguments = _normalize_healthcheck(arguments)
    elif instruction == "ONBUILD":
        trigger = _parse(arguments, inside_onbuild=True)
        arguments = str(trigger)
    elif instruction in ("RUN", "ADD", "COPY", "ARG", "SHELL"):
        pass  # ONBUILD triggers the engine only stores; the child build checks them
    return Change(instruction=instruction, arguments=arguments, label_keys=label_keys)


def parse_change(text: str) -> Change:
    """Validate one change instruction and return it normalized; raise ChangeError."""
    if not isinstance(text, str):
        raise ChangeError("invalid change %r: expected a string" % (text,))
    try:
        if "\n" in text or "\r" in text:
            raise ChangeError("one instruction per change, without line breaks")
        if text.rstrip().endswith("\\"):
            # The engine joins changes with newlines: a trailing escape would swallow the next one.
            raise ChangeError("a change must not end with a line continuation '\\'")
        if text.lstrip().startswith("#"):
            raise ChangeError("comments and parser directives are not changes")
        return _parse(text)
    except ChangeError as exc:
        raise ChangeError("invalid change %s: %s" % (json.dumps(text), exc))


def parse_changes(texts: Iterable[str], reserved_label_prefix: Optional[str] = None) -> List[Change]:
    """Validate a list of changes; LABEL keys under ``reserved_label_prefix`` are refused."""
    changes = []
    for text in texts or ():
        change = parse_change(text)
        for key in change.label_keys:
            if reserved_label_prefix and key.startswith(reserved_label_prefix):
                raise ChangeError(
                    "invalid change %s: label %r is reserved (labels starting with %r are"
                    " set by the module itself)" % (json.dumps(text), key, reserved_label_prefix)
                )
        changes.append(change)
    return changes
