"""Namespaces: every function, secret, kv bucket and queue belongs to exactly one.

This module is the one place where a name as a user writes it becomes the name the stores keep.
A resource `counters` of namespace `team-a` is stored as `team-a/counters`; resources of the
`default` namespace are stored unqualified, so data, paths, manifests and the CLI from before
namespaces keep working unchanged. Plain names never contain `/` (the manifest's name rules), so
a store name is unambiguous: no `/` means `default`, else the part before the one `/`.

A manifest's grants and triggers resolve inside the function's own namespace. A reference
`other-ns/name` names a resource of another namespace; it is honoured only while an admin of that
namespace shares it (`fnhost.control.shares`), checked at deploy and again at every call.
"""

from __future__ import annotations

import dataclasses
import re

from .errors import InvalidName
from .manifest import NAME_RE, REFERENCE_RE, Manifest

DEFAULT = "default"
NAMESPACE_RULE = "1..63 lower-case letters, digits or '-', starting with a letter"
SEPARATOR = "/"

QUALIFIED_FUNCTION_RE = re.compile(r"(?:[a-z][a-z0-9-]{0,62}/)?[a-z][a-z0-9-]{0,62}")
QUALIFIED_RESOURCE_RE = REFERENCE_RE
"""What the stores accept (`fullmatch`): a plain name (namespace `default`) or `<namespace>/<name>`."""


def check_namespace(namespace: object) -> str:
    """`namespace`, or `InvalidName` (400) naming the rule. Full match: no trailing newline."""
    if not isinstance(namespace, str) or not NAME_RE.fullmatch(namespace):
        raise InvalidName(f"namespace {namespace!r} is not valid: use {NAMESPACE_RULE}")
    return namespace


def qualify(namespace: str, name: str) -> str:
    """The store name of `name` in `namespace` (`default` stays unqualified)."""
    return name if namespace == DEFAULT else f"{namespace}{SEPARATOR}{name}"


def split(stored: str) -> tuple[str, str]:
    """(namespace, plain name) of a store name."""
    namespace, sep, name = stored.partition(SEPARATOR)
    return (namespace, name) if sep else (DEFAULT, stored)


def namespace_of(stored: str) -> str:
    return split(stored)[0]


def in_namespace(namespace: str, stored: list[str]) -> list[str]:
    """The plain names of the store names that belong to `namespace`, in their order."""
    return [name for ns, name in map(split, stored) if ns == namespace]


def resolve(namespace: str, reference: str) -> str:
    """The store name a manifest reference names from inside `namespace`.

    `name` is the function's own namespace's; `other/name` is namespace `other`'s (a share);
    `default/name` is the default namespace's `name`.
    """
    owner, sep, name = reference.partition(SEPARATOR)
    if not sep:
        return qualify(namespace, reference)
    return qualify(owner, name)


def is_foreign(namespace: str, stored: str) -> bool:
    return namespace_of(stored) != namespace


def resolve_manifest(function: str, manifest: Manifest) -> Manifest:
    """The manifest with its name, trigger queues and dead-letter queues as store names.

    `function` is the function's store name; the triggers use the result, so a queue trigger of
    `team-a/billing` on `orders` polls `team-a/orders`. Grants stay as written: the guest calls
    with those names, and the capabilities map them (`Capability.allowed`).
    """
    namespace = namespace_of(function)
    if namespace == DEFAULT and SEPARATOR not in _references(manifest):
        return manifest
    triggers = tuple(
        dataclasses.replace(
            t, queue=resolve(namespace, t.queue), dead_letter_queue=resolve(namespace, t.dead_letter_queue)
        )
        for t in manifest.queue_triggers
    )
    dlq = manifest.async_config.dead_letter_queue
    async_config = dataclasses.replace(
        manifest.async_config, dead_letter_queue=None if dlq is None else resolve(namespace, dlq)
    )
    blob_triggers = tuple(
        dataclasses.replace(
            b,
            bucket=resolve(namespace, b.bucket),
            queue=resolve(namespace, b.queue),
            dead_letter_queue=resolve(namespace, b.dead_letter_queue),
        )
        for b in manifest.blob_triggers
    )
    return dataclasses.replace(
        manifest, name=function, queue_triggers=triggers, async_config=async_config, blob_triggers=blob_triggers
    )


def _references(manifest: Manifest) -> str:
    names = [manifest.async_config.dead_letter_queue or ""]
    for t in manifest.queue_triggers:
        names += [t.queue, t.dead_letter_queue]
    for b in manifest.blob_triggers:
        names += [b.bucket, b.dead_letter_queue]
    return " ".join(names)


def reference(namespace: str, stored: str) -> str:
    """How code of `namespace` names the resource with store name `stored` (`resolve`'s inverse):
    its plain name when it is the namespace's own, else `owner/name`."""
    owner, name = split(stored)
    return name if owner == namespace else f"{owner}{SEPARATOR}{name}"


def local_reference(namespace: str, reference: str) -> str:
    """A reference as the function's namespace sees it: `team-a/x` from inside `team-a` is `x`."""
    owner, sep, name = reference.partition(SEPARATOR)
    return name if sep and owner == namespace else reference
