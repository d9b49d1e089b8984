# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.commit_changes import (
    COMMIT_INSTRUCTIONS,
    ChangeError,
    parse_change,
    parse_changes,
    parse_duration,
    split_words,
    unquote,
)


@pytest.mark.parametrize("text, normalized", [
    ("CMD echo hi", "CMD echo hi"),
    ("cmd   echo hi  ", "CMD echo hi"),
    ('CMD ["/bin/sh", "-c", "echo hi"]', 'CMD ["/bin/sh", "-c", "echo hi"]'),
    ("CMD []", "CMD []"),
    ('ENTRYPOINT ["/app"]', 'ENTRYPOINT ["/app"]'),
    ("ENTRYPOINT /app --serve", "ENTRYPOINT /app --serve"),
    ("ENV A=1", "ENV A=1"),
    ('ENV A=1 B="two words" C=x\\ y', 'ENV A=1 B="two words" C=x\\ y'),
    ("ENV LEGACY some value", "ENV LEGACY some value"),
    ("ENV EMPTY=", "ENV EMPTY="),
    ("EXPOSE 80", "EXPOSE 80"),
    ("EXPOSE 80/tcp 53/udp 8000-8010/tcp 9/sctp", "EXPOSE 80/tcp 53/udp 8000-8010/tcp 9/sctp"),
    ("EXPOSE $PORT", "EXPOSE $PORT"),
    ('LABEL a=b "c d"="e f"', 'LABEL a=b "c d"="e f"'),
    ("LABEL org.opencontainers.image.version=1.0", "LABEL org.opencontainers.image.version=1.0"),
    ("ONBUILD RUN make", "ONBUILD RUN make"),
    ("onbuild copy . /src", "ONBUILD COPY . /src"),
    ("ONBUILD EXPOSE 80", "ONBUILD EXPOSE 80"),
    ("USER app", "USER app"),
    ("USER 1000:1000", "USER 1000:1000"),
    ("VOLUME /data", "VOLUME /data"),
    ("VOLUME /a /b", "VOLUME /a /b"),
    ('VOLUME ["/a", "/b"]', 'VOLUME ["/a", "/b"]'),
    ("VOLUME $DATA", "VOLUME $DATA"),
    ("WORKDIR /srv/app", "WORKDIR /srv/app"),
    ("WORKDIR relative", "WORKDIR relative"),
    ("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGTERM"),
    ("STOPSIGNAL term", "STOPSIGNAL term"),
    ("STOPSIGNAL 9", "STOPSIGNAL 9"),
    ("STOPSIGNAL SIGRTMIN+3", "STOPSIGNAL SIGRTMIN+3"),
    ("HEALTHCHECK NONE", "HEALTHCHECK NONE"),
    ("healthcheck none", "HEALTHCHECK NONE"),
    ("HEALTHCHECK CMD curl -f http://localhost/", "HEALTHCHECK CMD curl -f http://localhost/"),
    ("HEALTHCHECK cmd true", "HEALTHCHECK CMD true"),
    (
        "HEALTHCHECK --interval=30s  --timeout=1m30s --start-period=500ms --retries=3 CMD [\"true\"]",
        "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --retries=3 CMD [\"true\"]",
    ),
    ("HEALTHCHECK --interval=0 CMD true", "HEALTHCHECK --interval=0 CMD true"),
])
def test_valid_changes_are_normalized(text, normalized):
    assert str(parse_change(text)) == normalized


@pytest.mark.parametrize("text, message", [
    ("", "empty instruction"),
    ("   ", "empty instruction"),
    ("RUN echo hi", "'RUN' is not an instruction docker commit applies"),
    ("FROM busybox", "'FROM' is not an instruction docker commit applies"),
    ("MAINTAINER me", "'MAINTAINER' is not an instruction docker commit applies"),
    ("COPY a b", "'COPY' is not an instruction docker commit applies"),
    ("CMD", "CMD needs arguments"),
    ("CMD\techo\nRUN rm -rf /", "without line breaks"),
    ("CMD echo \\", "line continuation"),
    ("# escape=`", "comments and parser directives"),
    ("CMD ['sh', '-c']", "not a JSON array of strings"),
    ('CMD ["sh", 1]', "JSON array of strings"),
    ('ENTRYPOINT ["a", {}]', "JSON array of strings"),
    ("ENV", "ENV needs arguments"),
    ("ENV ONLYKEY", "ENV needs key=value"),
    ("ENV A=1 B", "'B' is not of the form key=value"),
    ("ENV =1", "empty key"),
    ('ENV A="unterminated', "unterminated double quote"),
    ("LABEL a='x", "unterminated single quote"),
    ('ENV A=1 "B=two words"', "quotes in '\"B=two words\"' span the '='"),
    ("LABEL 'a=b'", "span the '='"),
    ("EXPOSE http", "'http' is not a port spec"),
    ("EXPOSE 0", "port 0 in '0' is out of range"),
    ("EXPOSE 65536", "out of range 1-65535"),
    ("EXPOSE 90-80", "ends before it starts"),
    ("EXPOSE 80/icmp", "protocol 'icmp' in '80/icmp' is not one of tcp, udp, sctp"),
    ("EXPOSE 127.0.0.1:80:80", "is not a port spec"),
    ("USER a b", "is not a single user[:group]"),
    ("USER a:b:c", "is not a single user[:group]"),
    ("VOLUME relative/path", "volume path 'relative/path' is not absolute"),
    ('VOLUME ["/a", ""]', "must not be empty"),
    ("VOLUME []", "VOLUME needs at least one path"),
    ("STOPSIGNAL SIGFOO", "'SIGFOO' is not a signal name or number"),
    ("STOPSIGNAL 0", "signal number 0 is out of range"),
    ("STOPSIGNAL 65", "out of range"),
    ("STOPSIGNAL $SIG", "is not a signal name"),
    ("HEALTHCHECK", "HEALTHCHECK needs arguments"),
    ("HEALTHCHECK true", "HEALTHCHECK needs CMD <command> or NONE, not 'true'"),
    ("HEALTHCHECK CMD", "HEALTHCHECK CMD needs a command"),
    ("HEALTHCHECK CMD []", "HEALTHCHECK CMD needs a command"),
    ("HEALTHCHECK --interval=30s", "HEALTHCHECK needs CMD <command> or NONE"),
    ("HEALTHCHECK --every=30s CMD true", "unknown HEALTHCHECK option --every"),
    ("HEALTHCHECK --interval CMD true", "--interval needs a value"),
    ("HEALTHCHECK --interval=30 CMD true", "'30' is not a duration"),
    ("HEALTHCHECK --interval=1us CMD true", "shorter than 1ms"),
    ("HEALTHCHECK --interval=-5s CMD true", "is not a duration"),
    ("HEALTHCHECK --retries=-1 CMD true", "--retries=-1 is not a whole number"),
    ("HEALTHCHECK --retries=3 --retries=4 CMD true", "--retries is given twice"),
    ("HEALTHCHECK --retries=3 NONE", "HEALTHCHECK NONE takes no options or arguments"),
    ("HEALTHCHECK NONE now", "HEALTHCHECK NONE takes no options or arguments"),
    ("ONBUILD", "ONBUILD needs arguments"),
    ("ONBUILD ONBUILD RUN x", "ONBUILD is not allowed as an ONBUILD trigger"),
    ("ONBUILD FROM busybox", "FROM is not allowed as an ONBUILD trigger"),
    ("ONBUILD MAINTAINER me", "MAINTAINER is not allowed as an ONBUILD trigger"),
    ("ONBUILD FETCH x", "'FETCH' is not a Dockerfile instruction ONBUILD can register"),
    ("ONBUILD EXPOSE 99999", "out of range"),
    ("ONBUILD RUN", "RUN needs arguments"),
])
def test_invalid_changes_give_one_line(text, message):
    with pytest.raises(ChangeError) as excinfo:
        parse_change(text)
    error = str(excinfo.value)
    assert message in error
    assert "\n" not in error
    assert error.startswith("invalid change ")


def test_non_string_change_is_refused():
    with pytest.raises(ChangeError, match="expected a string"):
        parse_change(42)


def test_every_commit_instruction_is_accepted():
    samples = {
        "CMD": "true", "ENTRYPOINT": "/bin/sh", "ENV": "A=1", "EXPOSE": "80", "LABEL": "a=b",
        "ONBUILD": "RUN true", "USER": "nobody", "VOLUME": "/v", "WORKDIR": "/w",
        "STOPSIGNAL": "SIGINT", "HEALTHCHECK": "NONE",
    }
    assert sorted(samples) == sorted(COMMIT_INSTRUCTIONS)
    for instruction, arguments in samples.items():
        assert parse_change(instruction + " " + arguments).instruction == instruction


def test_label_keys_are_unquoted():
    change = parse_change('LABEL "my key"=1 plain=2 \'single q\'=3')
    assert change.label_keys == ("my key", "plain", "single q")
    assert parse_change("LABEL legacy value with spaces").label_keys == ("legacy",)
    assert parse_change("ENV A=1").label_keys == ()


def test_reserved_label_prefix_is_refused():
    with pytest.raises(ChangeError, match="label 'mine.x' is reserved"):
        parse_changes(["CMD true", "LABEL ok=1 mine.x=2"], reserved_label_prefix="mine.")
    with pytest.raises(ChangeError, match="reserved"):
        parse_changes(['LABEL "mine.y"=2'], reserved_label_prefix="mine.")
    changes = parse_changes(["LABEL ok=1", "ONBUILD LABEL mine.z=3"], reserved_label_prefix="mine.")
    assert [str(change) for change in changes] == ["LABEL ok=1", "ONBUILD LABEL mine.z=3"]


def test_parse_changes_accepts_none_and_keeps_order():
    assert parse_changes(None) == []
    assert [c.instruction for c in parse_changes(["USER a", "CMD b", "ENV c=d"])] == ["USER", "CMD", "ENV"]


def test_parse_changes_names_the_bad_item():
    with pytest.raises(ChangeError, match='invalid change "EXPOSE nope"'):
        parse_changes(["CMD true", "EXPOSE nope"])


@pytest.mark.parametrize("text, words", [
    ("a b  c", ["a", "b", "c"]),
    ('a="b c" d', ['a="b c"', "d"]),
    ("a='b \\' c", ["a='b \\'", "c"]),
    ('a="b \\" c"', ['a="b \\" c"']),
    ("a\\ b c", ["a\\ b", "c"]),
    ("", []),
])
def test_split_words_like_the_dockerfile_parser(text, words):
    assert split_words(text) == words


@pytest.mark.parametrize("word, plain", [
    ('"a b"', "a b"),
    ("'a\\b'", "a\\b"),
    ("a\\ b", "a b"),
    ('x"y"z', "xyz"),
])
def test_unquote(word, plain):
    assert unquote(word) == plain


@pytest.mark.parametrize("text, nanoseconds", [
    ("0", 0),
    ("1ns", 1),
    ("500ms", 500000000),
    ("30s", 30000000000),
    ("1m30s", 90000000000),
    ("1.5h", 5400000000000),
    (".5s", 500000000),
    ("2us", 2000),
])
def test_parse_duration(text, nanoseconds):
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "1s2", "-1s", ".s"])
def test_parse_duration_rejects(text):
    with pytest.raises(ChangeError):
        parse_duration(text)
