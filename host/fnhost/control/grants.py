"""Who may grant what: the deploy-time check of a manifest's grants (IAM's PassRole, made explicit).

A function runs with what its manifest grants, so deploying one is handing it those rights. Every
resource a manifest names — what each capability says it hands out (`Capability.resources`):
`[grants]` kv, secrets, queues and http origins, each `[[triggers.queue]]` queue and its
dead-letter queue, `[async] dead_letter_queue` — must be

1. the function's own namespace's, or shared with that namespace by the owner (`Shares`) — except
   outbound origins, which belong to no namespace (`Capability.namespaced`), and
2. within what the deploying key may grant (`Principal.may_grant_resource`): anything of its
   namespace for an admin, the `may_grant` patterns for any other key (`http:https://*.example.org`
   for egress: a limited key opens no outbound origin it was not given).

`Host.deploy` calls `authorize_deploy` before it stores anything, and `Host.set_alias` calls it
for the version an alias is pointed at, so a rollback never gives a function more than the key
that moves the alias may grant. The HTTP API and the CLI only pass the caller's key along.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..capabilities import GRANTED
from ..errors import Forbidden
from ..manifest import Manifest
from ..namespaces import is_foreign, local_reference, namespace_of, split
from .auth import DEPLOY, Principal
from .shares import Shares


@dataclass(frozen=True)
class Grant:
    """One resource a manifest hands its function."""

    kind: str  # the capability's resource kind (kv | secret | queue)
    reference: str  # as the function's namespace names it: `name`, or `owner/name`
    stored: str  # the store name
    where: str  # the manifest field, for messages
    namespaced: bool = True  # False: an outbound origin, the same from every namespace (never foreign)


def grants_of(function: str, manifest: Manifest) -> list[Grant]:
    """Every resource `manifest` gives the function with store name `function`: what each capability
    says it hands out (`Capability.resources`), in capability then manifest order."""
    namespace = namespace_of(function)
    return [
        Grant(
            cap.kind,
            local_reference(namespace, ref) if cap.namespaced else ref,
            cap.store_name_of(namespace, ref),
            where,
            cap.namespaced,
        )
        for cap in GRANTED
        for ref, where in cap.resources(manifest)
    ]


def authorize_deploy(principal: Principal | None, function: str, manifest: Manifest, shares: Shares) -> None:
    """Raise unless `principal` may deploy `function` with `manifest`'s grants.

    `principal` None is the operator (an embedder, `fnhost serve --bundles`): it may grant anything
    of any namespace, but even it cannot reach into a namespace that has not shared the resource.
    `Forbidden` names the manifest field, the resource and the permission that is missing.
    """
    if principal is not None:
        principal.require(DEPLOY, function)
    namespace = namespace_of(function)
    for grant in grants_of(function, manifest):
        owner, name = split(grant.stored)
        foreign = grant.namespaced and is_foreign(namespace, grant.stored)
        if foreign and not shares.active(grant.kind, grant.stored, namespace):
            raise Forbidden(
                f"{grant.where}: {grant.kind} '{grant.reference}' belongs to namespace '{owner}', which has not "
                f"shared it with '{namespace}'; an admin of '{owner}' can share it "
                f"(fnhost shares create {grant.kind} {name} --with {namespace} --namespace {owner})"
            )
        if principal is not None and not principal.may_grant_resource(grant.kind, grant.reference):
            given = ", ".join(principal.may_grant) or "nothing"
            raise Forbidden(
                f"{grant.where}: API key {principal.key_id} ({principal.name}) may not grant {grant.kind} "
                f"'{grant.reference}': it lacks the permission '{grant.kind}:{grant.reference}' (it may grant: "
                f"{given}); deploy with a key that has it, or ask an admin to add --may-grant "
                f"'{grant.kind}:{grant.reference}' to a key"
            )
