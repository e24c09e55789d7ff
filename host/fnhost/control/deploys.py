"""The one deploy pipeline: a bundle zip in, a version out, audited either way.

Every deploy takes this path — `PUT /v1/functions/{name}`, `fnhost serve --bundles`, `fnhost dev`
and embedders calling `Server.deploy_bundle` — so each gets the same checks, in this order:
the bundle's shape and size (`open_bundle`), its signature when the server trusts signing keys,
the name (the one asked for must be the manifest's), then `Host.deploy` (the grants within what
the actor may grant, the wasm compiled, exports and imports checked). One `function.deploy`
audit entry records the outcome: `ok` with the version, or the error's code and message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import FnhostError, InvalidRequest
from ..namespaces import split
from .audit import AuditLog
from .auth import Principal
from .bundles import BundleLimits, open_bundle
from .signing import verify_bundle

if TYPE_CHECKING:
    from ..host import Host, Version

log = logging.getLogger("fnhost")


@dataclass(frozen=True)
class Deployment:
    """What a deploy made: the version (`version.created` False when it was the newest one again),
    the bundle's digest and the trusted key that signed it (None when the server trusts none)."""

    version: Version
    bundle_sha256: str
    signed_by: str | None


class Deployer:
    """Deploys bundles into `host`, each recorded in `audit_log`; with `trusted_keys`, only signed ones."""

    def __init__(
        self,
        host: Host,
        audit_log: AuditLog,
        *,
        trusted_keys: Sequence[str] = (),
        limits: BundleLimits | None = None,
    ) -> None:
        self.host = host
        self.audit_log = audit_log
        self.trusted_keys = list(trusted_keys)
        self.limits = limits or BundleLimits()

    def deploy_bundle(
        self,
        bundle: bytes,
        actor: Principal | None = None,
        *,
        name: str | None = None,
        created_by: str | None = None,
        request_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Deployment:
        """Deploy a bundle zip as `name` (a store name, `team-a/billing`; default the manifest's name
        in the default namespace). `actor` is the API key deploying (None: the operator, who may grant
        anything; `created_by` then names the source, e.g. "serve --bundles"). `detail` is added to
        the audit entry. The `Deployment`, or the `FnhostError` saying why not."""
        note: dict[str, Any] = {**(detail or {}), "bytes": len(bundle)}
        target = name or "(unknown)"
        try:
            opened = open_bundle(bundle, limits=self.limits)
            note["bundle_sha256"] = opened.sha256
            target = name or opened.manifest.name
            if self.trusted_keys:
                note["signed_by"] = verify_bundle(opened, self.trusted_keys)
            plain = split(target)[1]
            if opened.manifest.name != plain:
                raise InvalidRequest(
                    f"the URL names function {plain!r} but the bundle's fnhost.toml says name = "
                    f"{opened.manifest.name!r}; deploy to /v1/functions/{opened.manifest.name}"
                )
            version = self.host.deploy(target, opened.wasm, opened.manifest, principal=actor, created_by=created_by)
        except FnhostError as e:
            try:
                self._audit(target, e.code, actor, request_id, {**note, "message": str(e)})
            except Exception:  # the deploy's own error says what went wrong; a failed audit (full disk) is logged
                log.exception("fnhost: could not audit a failed deploy of %s (%s)", target, e.code)
            raise
        note.update(version=version.version, sha256=version.sha256, created=version.created)
        self._audit(target, "ok", actor, request_id, note)
        return Deployment(version, opened.sha256, note.get("signed_by"))

    def _audit(
        self, target: str, outcome: str, actor: Principal | None, request_id: str | None, detail: dict[str, Any]
    ) -> None:
        key_id = actor.key_id if actor is not None else None
        self.audit_log.record("function.deploy", target, outcome, key_id, request_id, detail)
