"""`kubectl_complete-claw`: what `kubectl claw <TAB>` offers (kubectl 1.26+ plugin completion).

kubectl runs this executable with the words typed after `claw` (the last one is the word being
completed, possibly empty) and reads Cobra's protocol back: one candidate per line, then
`:<directive>` (4 = no file completion). Verbs, each verb's flags, `-o` values, namespaces and
ClawInstance names (from the cluster, quietly nothing when it cannot be reached).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Sequence

from claw_operator.plugin.main import VERBS, build_parser

NO_FILE_COMPLETION = 4
_VALUE_FLAGS = {"-n", "--namespace", "-o", "--output", "--kubeconfig", "--context", "--fly-token-secret"}
_VALUE_FLAGS |= {"--fly-api-url", "--default-app"}


def _verb_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flag_value(words: Sequence[str], *flags: str) -> str | None:
    for i, word in enumerate(words):
        for flag in flags:
            if word == flag and i + 1 < len(words):
                return words[i + 1]
            if word.startswith(flag + "="):
                return word.split("=", 1)[1]
    return None


def _cluster_names(words: Sequence[str], what: str) -> list[str]:
    from claw_operator.plugin.kubeside import Cluster

    # Quiet: a completion must never print an error into the user's prompt.
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            cluster = Cluster.connect(
                _flag_value(words, "--kubeconfig"), _flag_value(words, "--context"), None
            )
            try:
                if what == "namespaces":
                    from kubernetes import client

                    listed = client.CoreV1Api(cluster.api_client).list_namespace(_request_timeout=5)
                    return sorted(str(ns.metadata.name) for ns in listed.items if ns.metadata)
                namespace = _flag_value(words, "-n", "--namespace") or cluster.namespace
                all_namespaces = "-A" in words or "--all-namespaces" in words
                items = cluster.list_instances(None if all_namespaces else namespace)
                return sorted({o["metadata"]["name"] for o in items})
            finally:
                cluster.close()
        except Exception:
            return []


def candidates(words: Sequence[str]) -> list[str]:
    """Completions for the last word, given the words before it."""
    *before, current = list(words) or [""]
    verbs = _verb_parsers()
    if not before:
        if current.startswith("-"):
            return [f for f in ("--help", "--version") if f.startswith(current)]
        return [v for v in (*VERBS, "completion") if v.startswith(current)]
    verb = before[0]
    parser = verbs.get(verb)
    if parser is None:
        return []
    previous = before[-1]
    if previous in ("-o", "--output"):
        return [v for v in ("yaml", "json") if v.startswith(current)]
    if previous in ("-n", "--namespace"):
        return [n for n in _cluster_names(before, "namespaces") if n.startswith(current)]
    if previous in _VALUE_FLAGS:
        return []
    if current.startswith("-"):
        flags = [
            s
            for action in parser._actions
            for s in action.option_strings
            if s.startswith("--") or len(s) == 2
        ]
        return sorted(f for f in flags if f.startswith(current))
    if verb == "completion":
        return [s for s in ("bash", "zsh") if s.startswith(current)]
    positional = [
        w for i, w in enumerate(before[1:], 1) if not w.startswith("-") and before[i - 1] not in _VALUE_FLAGS
    ]
    if verb != "get" and positional:
        return []  # one NAME per verb
    return [n for n in _cluster_names(before, "instances") if n.startswith(current) and n not in positional]


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] == "__complete":  # Cobra's own entry, when called as such
        words = words[1:]
    for candidate in candidates(words):
        print(candidate)
    print(f":{NO_FILE_COMPLETION}")
    return 0


def run() -> None:
    sys.exit(main())
